"""numba-cuda kernels for IQ4_NL (one thread per 32-weight block) and IQ4_XS (one thread per
256-weight super-block), running block_ops.py compiled as device functions."""
from __future__ import annotations

import numpy as np
from numba import cuda, float32

from ..registry import register
from ..shared.cuda_common import launch, load_cuda_twin, to_device_inputs
from ..types import get_format

_twin = load_cuda_twin("iq4.block_ops")
iq4_nl_block = _twin.iq4_nl_block
iq4_xs_block = _twin.iq4_xs_block


@cuda.jit
def _nl_kernel(n_blocks, x, n_per_row, qw, use_w, out):
    blk = cuda.grid(1)
    if blk >= n_blocks:
        return
    wbuf = cuda.local.array(32, float32)
    res = cuda.local.array(2, float32)
    b = blk % (n_per_row // 32)
    iq4_nl_block(x, blk * 32, use_w, qw, b * 32, out, blk * 18, wbuf, res)


@cuda.jit
def _xs_kernel(n_blocks, x, n_per_row, qw, use_w, out):
    blk = cuda.grid(1)
    if blk >= n_blocks:
        return
    wbuf = cuda.local.array(32, float32)
    res = cuda.local.array(2, float32)
    scales = cuda.local.array(8, float32)
    b = blk % (n_per_row // 256)
    iq4_xs_block(x, blk * 256, use_w, qw, b * 256, out, blk * 136, wbuf, res, scales)


def _run(kernel, qtype, rows, imatrix):
    fmt = get_format(qtype)
    n_rows, n_per_row = rows.shape
    d_x, d_w = to_device_inputs(rows, imatrix)
    n_blocks = n_rows * (n_per_row // fmt.block_size)
    d_out = cuda.device_array(n_blocks * fmt.type_size, dtype=np.uint8)
    launch(kernel, n_blocks, d_x, n_per_row, d_w, imatrix is not None, d_out)
    return d_out.copy_to_host().reshape(n_rows, -1)


@register("IQ4_NL", "cuda")
def iq4_nl_cuda(rows, imatrix=None, threads=None):
    return _run(_nl_kernel, "IQ4_NL", rows, imatrix)


@register("IQ4_XS", "cuda")
def iq4_xs_cuda(rows, imatrix=None, threads=None):
    return _run(_xs_kernel, "IQ4_XS", rows, imatrix)
