"""numba-cuda kernels for IQ2_XXS, IQ2_XS and IQ2_S: one thread per 256-weight super-block,
running block_ops.py compiled as device functions; the grid tables (grid.py) go to the device
once per process."""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda, float32, int64, uint8

from ..registry import register
from ..shared.cuda_common import launch, to_device_inputs
from ..shared.cuda_common import load_cuda_twin
from ..types import get_format
from .grid import tables

_twin = load_cuda_twin("iq2.block_ops")
iq2_xxs_block = _twin.iq2_xxs_block
iq2_16_block = _twin.iq2_16_block
MAX_LIST = _twin.MAX_LIST


@cuda.jit
def _kernel(n_sb, x, n_per_row, qw, use_w, out, kind, size, kmap, nbrs, slab):
    s = cuda.grid(1)
    if s >= n_sb:
        return
    weight = cuda.local.array(32, float32)
    waux = cuda.local.array(32, float32)
    xval = cuda.local.array(32, float32)
    L = cuda.local.array(32, int64)
    Laux = cuda.local.array(32, int64)
    Lq = cuda.local.array(32, uint8)
    scales = cuda.local.array(16, float32)
    res = cuda.local.array(4, float32)
    on = cuda.local.array(4, int64)
    d2 = cuda.local.array(MAX_LIST, float32)
    qwo = (s % (n_per_row // 256)) * 256
    if kind == 0:
        iq2_xxs_block(x, s * 256, qw, qwo, kmap, nbrs, slab, out, s * size,
                      weight, waux, xval, L, Laux, Lq, scales, res, d2)
    else:
        iq2_16_block(kind == 2, x, s * 256, use_w, qw, qwo, kmap, nbrs, slab, out, s * size,
                     weight, waux, xval, L, Laux, on, scales, res, d2)


@functools.lru_cache(maxsize=None)
def _device_tables(qtype: str):
    t = tables(qtype)
    return cuda.to_device(t.kmap), cuda.to_device(t.neighbours), cuda.to_device(t.slab)


def _run(qtype: str, kind: int, rows, imatrix):
    fmt = get_format(qtype)
    n_rows, n_per_row = rows.shape
    d_x, d_w = to_device_inputs(rows, imatrix)
    n_sb = n_rows * (n_per_row // 256)
    d_out = cuda.device_array(n_sb * fmt.type_size, dtype=np.uint8)
    launch(_kernel, n_sb, d_x, n_per_row, d_w, imatrix is not None, d_out, kind, fmt.type_size,
           *_device_tables(qtype))
    return d_out.copy_to_host().reshape(n_rows, -1)


@register("IQ2_XXS", "cuda")
def iq2_xxs_cuda(rows, imatrix=None, threads=None):
    return _run("IQ2_XXS", 0, rows, imatrix)


@register("IQ2_XS", "cuda")
def iq2_xs_cuda(rows, imatrix=None, threads=None):
    return _run("IQ2_XS", 1, rows, imatrix)


@register("IQ2_S", "cuda")
def iq2_s_cuda(rows, imatrix=None, threads=None):
    return _run("IQ2_S", 2, rows, imatrix)
