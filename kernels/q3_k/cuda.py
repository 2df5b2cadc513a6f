"""numba-cuda kernel for Q3_K: one thread per 256-weight super-block, running the same
per-super-block code as the CPU (block_ops.py compiled as device functions)."""
from __future__ import annotations

from numba import cuda, float32, int32

from ..registry import register
from ..shared.cuda_common import load_cuda_twin, run_per_block
from ..types import get_format
from .block_ops import QK_K, TYPE_SIZE

_block_ops = load_cuda_twin("q3_k.block_ops")
q3_k_block = _block_ops.q3_k_block
q3_k_wblock = _block_ops.q3_k_wblock


@cuda.jit
def _kernel(n_blocks, x, n_per_row, qw, use_w, out):
    blk = cuda.grid(1)
    if blk >= n_blocks:
        return
    L = cuda.local.array(QK_K, int32)
    Ls = cuda.local.array(16, int32)
    scales = cuda.local.array(16, float32)
    wbuf = cuda.local.array(16, float32)
    sw = cuda.local.array(16, float32)
    if use_w:
        q3_k_wblock(x, blk * QK_K, qw, (blk % (n_per_row // QK_K)) * QK_K, out, blk * TYPE_SIZE,
                    L, Ls, scales, wbuf, sw)
    else:
        q3_k_block(x, blk * QK_K, out, blk * TYPE_SIZE, L, Ls, scales)


@register("Q3_K", "cuda")
def q3_k_cuda(rows, imatrix=None, threads=None):
    return run_per_block(_kernel, get_format("Q3_K"), rows, imatrix)
