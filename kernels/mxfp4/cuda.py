"""numba-cuda kernel for MXFP4: one thread per 32-weight block, running block_ops.py compiled
as device functions (the log2f threshold table travels as a device array)."""
from __future__ import annotations

import numpy as np
from numba import cuda

from ..registry import register
from ..shared.cuda_common import launch, load_cuda_twin, to_device_inputs
from .block_ops import TYPE_SIZE
from .exponent import thresholds

mxfp4_block = load_cuda_twin("mxfp4.block_ops").mxfp4_block


@cuda.jit
def _kernel(n_blocks, x, out, thr):
    blk = cuda.grid(1)
    if blk < n_blocks:
        mxfp4_block(x, blk * 32, out, blk * TYPE_SIZE, thr)


@register("MXFP4", "cuda")
def mxfp4_cuda(rows, imatrix=None, threads=None):
    n_rows, n_per_row = rows.shape
    d_x, _ = to_device_inputs(rows, None)
    n_blocks = n_rows * (n_per_row // 32)
    d_out = cuda.device_array(n_blocks * TYPE_SIZE, dtype=np.uint8)
    launch(_kernel, n_blocks, d_x, d_out, cuda.to_device(thresholds()))
    return d_out.copy_to_host().reshape(n_rows, -1)
