"""numba-cuda kernels for IQ3_XXS and IQ3_S: one thread per 256-weight super-block running
block_ops.py compiled as device functions; the grid tables travel as device arrays (the
neighbour lists are too large for constant memory)."""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda, float32, int32
from numba import boolean as nb_bool

from ..registry import register
from ..shared.cuda_common import launch, load_cuda_twin, to_device_inputs
from ..types import get_format
from .grid import tables

iq3_superblock = load_cuda_twin("iq3.block_ops").iq3_superblock


@cuda.jit
def _kernel(n_sb, x, n_per_row, qw, use_w, out, is_s, size, values, kmap, neighbours):
    s = cuda.grid(1)
    if s >= n_sb:
        return
    weight = cuda.local.array(32, float32)
    waux = cuda.local.array(32, float32)
    xval = cuda.local.array(32, float32)
    L = cuda.local.array(32, int32)
    Laux = cuda.local.array(32, int32)
    on_grid = cuda.local.array(8, nb_bool)
    on_aux = cuda.local.array(8, nb_bool)
    signs = cuda.local.array(4, int32)
    scales = cuda.local.array(8, float32)
    res = cuda.local.array(2, float32)
    b = s % (n_per_row // 256)
    iq3_superblock(x, s * 256, use_w, qw, b * 256, out, s * size, is_s, values, kmap, neighbours,
                   weight, waux, xval, L, Laux, on_grid, on_aux, signs, scales, res)


@functools.lru_cache(maxsize=None)
def _device_tables(grid_size: int):
    values, kmap, neighbours, _ = tables(grid_size)
    return cuda.to_device(values), cuda.to_device(kmap), cuda.to_device(neighbours)


def _run(qtype, rows, imatrix):
    fmt = get_format(qtype)
    is_s = qtype == "IQ3_S"
    n_rows, n_per_row = rows.shape
    d_x, d_w = to_device_inputs(rows, imatrix)
    n_sb = n_rows * (n_per_row // 256)
    d_out = cuda.device_array(n_sb * fmt.type_size, dtype=np.uint8)
    launch(_kernel, n_sb, d_x, n_per_row, d_w, imatrix is not None, d_out, is_s, fmt.type_size,
           *_device_tables(512 if is_s else 256))
    return d_out.copy_to_host().reshape(n_rows, -1)


@register("IQ3_XXS", "cuda")
def iq3_xxs_cuda(rows, imatrix=None, threads=None):
    return _run("IQ3_XXS", rows, imatrix)


@register("IQ3_S", "cuda")
def iq3_s_cuda(rows, imatrix=None, threads=None):
    return _run("IQ3_S", rows, imatrix)
