"""numba-cuda kernels for IQ1_S and IQ1_M: one thread per 256-weight super-block, running
superblock_ops.py / block_ops.py compiled as device functions (every step scalar, the split search included).
The grid tables go to the device once per process."""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda, float32, int32

from .. import ImatrixRequiredError
from ..registry import register
from ..shared.cuda_common import launch, load_cuda_twin, to_device_inputs
from ..types import get_format
from .grid import iq1_tables

_twin = load_cuda_twin("iq1.superblock_ops")
iq1_s_superblock = _twin.iq1_s_superblock
iq1_m_superblock = _twin.iq1_m_superblock


@functools.lru_cache(maxsize=1)
def _device_tables():
    lev, kmap, nbr = iq1_tables()
    return cuda.to_device(lev), cuda.to_device(kmap), cuda.to_device(nbr)


@cuda.jit
def _s_kernel(n_sb, x, n_per_row, qw, use_w, out, fail, lev, kmap, nbr):
    sb = cuda.grid(1)
    if sb >= n_sb:
        return
    w = cuda.local.array(32, float32)
    idx = cuda.local.array(32, int32)
    L = cuda.local.array(32, int32)
    index = cuda.local.array(4, int32)
    e = cuda.local.array(24, float32)
    sx = cuda.local.array(33, float32)
    sw = cuda.local.array(33, float32)
    res = cuda.local.array(2, float32)
    ires = cuda.local.array(3, int32)
    scales = cuda.local.array(8, float32)
    shifts = cuda.local.array(8, int32)
    xo = sb * 256
    fail[sb] = iq1_s_superblock(lev, kmap, nbr, x, xo, qw, xo % n_per_row, out, sb * 50,
                                w, idx, L, index, e, sx, sw, res, ires, scales, shifts)


@cuda.jit
def _m_kernel(n_sb, x, n_per_row, qw, use_w, out, fail, lev, kmap, nbr):
    sb = cuda.grid(1)
    if sb >= n_sb:
        return
    w = cuda.local.array(16, float32)
    idx = cuda.local.array(16, int32)
    L = cuda.local.array(16, int32)
    index = cuda.local.array(2, int32)
    e = cuda.local.array(24, float32)
    px = cuda.local.array(34, float32)
    pw = cuda.local.array(34, float32)
    res = cuda.local.array(2, float32)
    ires = cuda.local.array(3, int32)
    scales = cuda.local.array(16, float32)
    shifts = cuda.local.array(16, int32)
    t0 = cuda.local.array(4, float32)
    t1 = cuda.local.array(4, float32)
    xo = sb * 256
    fail[sb] = iq1_m_superblock(lev, kmap, nbr, x, xo, use_w, qw, xo % n_per_row, out, sb * 56,
                                w, idx, L, index, e, px, pw, res, ires, scales, shifts, t0, t1)


def _run(kernel, qtype, rows, imatrix):
    fmt = get_format(qtype)
    n_rows, n_per_row = rows.shape
    d_x, d_w = to_device_inputs(rows, imatrix)
    n_sb = n_rows * (n_per_row // 256)
    d_out = cuda.device_array(n_sb * fmt.type_size, dtype=np.uint8)
    d_fail = cuda.device_array(n_sb, dtype=np.int32)
    launch(kernel, n_sb, d_x, n_per_row, d_w, imatrix is not None, d_out, d_fail,
           *_device_tables())
    if d_fail.copy_to_host().any():
        raise ValueError(f"{qtype}: weights too large to quantize (no grid point within float "
                         "range; llama.cpp would read out of bounds here)")
    return d_out.copy_to_host().reshape(n_rows, -1)


@register("IQ1_S", "cuda")
def iq1_s_cuda(rows, imatrix=None, threads=None):
    if imatrix is None:
        raise ImatrixRequiredError("IQ1_S")
    return _run(_s_kernel, "IQ1_S", rows, imatrix)


@register("IQ1_M", "cuda")
def iq1_m_cuda(rows, imatrix=None, threads=None):
    return _run(_m_kernel, "IQ1_M", rows, imatrix)
