"""numba CPU kernel for MXFP4: threads over runs of 32-weight blocks, each block's 32 nearest-
value searches in loops LLVM vectorizes (block_ops.py, the same code as the GPU)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads
from .block_ops import TYPE_SIZE, mxfp4_block
from .exponent import thresholds

RUN = 256                      # blocks per work item
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(parallel=True, **_JIT)
def _quantize(x, out, thr, bad):
    total = x.size // 32
    n_runs = (total + RUN - 1) // RUN
    for t in prange(n_runs):
        flag = False
        for blk in range(t * RUN, min(total, t * RUN + RUN)):
            for j in range(32):
                flag |= nonfinite(x[blk * 32 + j])
            mxfp4_block(x, blk * 32, out, blk * TYPE_SIZE, thr)
        bad[t] = flag


@register("MXFP4", "cpu")
def mxfp4_cpu(rows, imatrix=None, threads=None):
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    x = flat(rows)
    out = np.empty(n_rows * (n_per_row // 32) * TYPE_SIZE, np.uint8)
    bad = np.zeros((x.size // 32 + RUN - 1) // RUN, np.bool_)
    _quantize(x, out, thresholds(), bad)
    raise_on_nonfinite(rows, bad)
    return out.reshape(n_rows, -1)
