"""numba-cuda kernels for Q6_K and Q3_K: one thread per 256-weight super-block, running the same
per-super-block code as the CPU (q6_k_ops.py / q3_k_ops.py compiled as device functions)."""
from __future__ import annotations

import numpy as np
from numba import cuda, float32, int32

from .cuda_common import launch, load_cuda_twin, to_device_inputs
from .registry import register

_q6 = load_cuda_twin("q6_k_ops")
_q3 = load_cuda_twin("q3_k_ops")
q6_k_block = _q6.q6_k_block
q3_k_block = _q3.q3_k_block
q3_k_wblock = _q3.q3_k_wblock


@cuda.jit
def _q6_k_kernel(n_blocks, x, n_per_row, qw, use_w, out):
    blk = cuda.grid(1)
    if blk >= n_blocks:
        return
    wbuf = cuda.local.array(16, float32)
    L = cuda.local.array(256, int32)
    scales = cuda.local.array(16, float32)
    b = blk % (n_per_row // 256)
    q6_k_block(x, blk * 256, use_w, qw, b * 256, out, blk * 210, wbuf, L, scales)


@cuda.jit
def _q3_k_kernel(n_blocks, x, n_per_row, qw, use_w, out):
    blk = cuda.grid(1)
    if blk >= n_blocks:
        return
    L = cuda.local.array(256, int32)
    Ls = cuda.local.array(16, int32)
    scales = cuda.local.array(16, float32)
    wbuf = cuda.local.array(16, float32)
    sw = cuda.local.array(16, float32)
    if use_w:
        q3_k_wblock(x, blk * 256, qw, (blk % (n_per_row // 256)) * 256, out, blk * 110, L, Ls,
                    scales, wbuf, sw)
    else:
        q3_k_block(x, blk * 256, out, blk * 110, L, Ls, scales)


def _run(kernel, type_size, rows, imatrix):
    n_rows, n_per_row = rows.shape
    d_x, d_w = to_device_inputs(rows, imatrix)
    n_blocks = n_rows * (n_per_row // 256)
    d_out = cuda.device_array(n_blocks * type_size, dtype=np.uint8)
    launch(kernel, n_blocks, d_x, n_per_row, d_w, imatrix is not None, d_out)
    return d_out.copy_to_host().reshape(n_rows, -1)


@register("Q6_K", "cuda")
def q6_k_cuda(rows, imatrix=None, threads=None):
    return _run(_q6_k_kernel, 210, rows, imatrix)


@register("Q3_K", "cuda")
def q3_k_cuda(rows, imatrix=None, threads=None):
    return _run(_q3_k_kernel, 110, rows, imatrix)
