"""numba-cuda kernel for Q6_K: one thread per 256-weight super-block, running the same
per-super-block code as the CPU (block_ops.py compiled as device functions)."""
from __future__ import annotations

from numba import cuda, float32, int32

from ..registry import register
from ..shared.cuda_common import load_cuda_twin, run_per_block
from ..types import get_format
from .block_ops import QK_K, TYPE_SIZE

q6_k_block = load_cuda_twin("q6_k.block_ops").q6_k_block


@cuda.jit
def _kernel(n_blocks, x, n_per_row, qw, use_w, out):
    blk = cuda.grid(1)
    if blk >= n_blocks:
        return
    wbuf = cuda.local.array(16, float32)
    L = cuda.local.array(QK_K, int32)
    scales = cuda.local.array(16, float32)
    b = blk % (n_per_row // QK_K)
    q6_k_block(x, blk * QK_K, use_w, qw, b * QK_K, out, blk * TYPE_SIZE, wbuf, L, scales)


@register("Q6_K", "cuda")
def q6_k_cuda(rows, imatrix=None, threads=None):
    return run_per_block(_kernel, get_format("Q6_K"), rows, imatrix)
