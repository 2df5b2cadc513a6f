"""numba-cuda kernels for TQ1_0 and TQ2_0: one thread per 256-weight block, running
block_ops.py compiled as device functions."""
from __future__ import annotations

import numpy as np
from numba import cuda

from ..registry import register
from ..shared.cuda_common import launch, load_cuda_twin, to_device_inputs
from ..types import get_format
from .cpu import KINDS

ternary_block = load_cuda_twin("ternary.block_ops").ternary_block


@cuda.jit
def _kernel(n_blocks, kind, type_size, x, out):
    blk = cuda.grid(1)
    if blk < n_blocks:
        ternary_block(kind, x, blk * 256, out, blk * type_size)


def _make(qtype: str, kind: int):
    fmt = get_format(qtype)

    @register(qtype, "cuda")
    def kernel(rows, imatrix=None, threads=None):
        n_rows, n_per_row = rows.shape
        d_x, _ = to_device_inputs(rows, None)
        n_blocks = n_rows * (n_per_row // 256)
        d_out = cuda.device_array(n_blocks * fmt.type_size, dtype=np.uint8)
        launch(_kernel, n_blocks, kind, fmt.type_size, d_x, d_out)
        return d_out.copy_to_host().reshape(n_rows, -1)

    kernel.__name__ = f"{qtype.lower()}_cuda"
    return kernel


for _name, _kind in KINDS.items():
    _make(_name, _kind)
