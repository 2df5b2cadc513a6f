"""numba-cuda kernels for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: one thread per 32-weight block, running
the same per-block code as the CPU (block_ops.py compiled as device functions)."""
from __future__ import annotations

import numpy as np
from numba import cuda, float32, int32

from ..registry import register
from ..shared.cuda_common import load_cuda_twin, row_mean_squares, to_device_inputs, launch
from ..types import family_types, get_format
from .cpu import BLOCK, KINDS

legacy_block = load_cuda_twin("legacy.block_ops").legacy_block


@cuda.jit
def _kernel(n_blocks, kind, type_size, x, n_per_row, qw, use_w, sig, out):
    blk = cuda.grid(1)
    if blk >= n_blocks:
        return
    wbuf = cuda.local.array(BLOCK, float32)
    L = cuda.local.array(BLOCK, int32)
    Laux = cuda.local.array(BLOCK, int32)
    res = cuda.local.array(1, float32)
    nb = n_per_row // BLOCK
    r = blk // nb
    b = blk - r * nb
    legacy_block(kind, x, blk * BLOCK, use_w, qw, b * BLOCK, sig[r], out, blk * type_size,
                 wbuf, L, Laux, res)


def _make(qtype: str):
    kind, type_size = KINDS[qtype], get_format(qtype).type_size

    @register(qtype, "cuda")
    def kernel(rows, imatrix=None, threads=None):
        n_rows, n_per_row = rows.shape
        use_w = imatrix is not None and qtype != "Q8_0"
        d_x, d_w = to_device_inputs(rows, imatrix if use_w else None)
        sig = row_mean_squares(d_x, n_rows, n_per_row, use_w)
        n_blocks = n_rows * (n_per_row // BLOCK)
        d_out = cuda.device_array(n_blocks * type_size, dtype=np.uint8)
        launch(_kernel, n_blocks, kind, type_size, d_x, n_per_row, d_w, use_w, sig, d_out)
        return d_out.copy_to_host().reshape(n_rows, -1)

    kernel.__name__ = f"{qtype.lower()}_cuda"
    return kernel


for _t in family_types("legacy"):
    _make(_t.name)
