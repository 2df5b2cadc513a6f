"""numba CPU kernels for TQ1_0 and TQ2_0: threads over runs of blocks, each block's 256 trits in
loops LLVM vectorizes (block_ops.py, the same code as the GPU). No imatrix (ggml has none)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads
from ..types import get_format
from .block_ops import ternary_block

RUN = 64                       # blocks per work item
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(parallel=True, **_JIT)
def _quantize(kind, type_size, x, out, bad):
    total = x.size // 256
    n_runs = (total + RUN - 1) // RUN
    for t in prange(n_runs):
        flag = False
        for blk in range(t * RUN, min(total, t * RUN + RUN)):
            for j in range(256):
                flag |= nonfinite(x[blk * 256 + j])
            ternary_block(kind, x, blk * 256, out, blk * type_size)
        bad[t] = flag


def _make(qtype: str, kind: int):
    fmt = get_format(qtype)

    @register(qtype, "cpu")
    def kernel(rows, imatrix=None, threads=None):
        set_threads(threads)
        n_rows, n_per_row = rows.shape
        x = flat(rows)
        out = np.empty(n_rows * (n_per_row // 256) * fmt.type_size, np.uint8)
        bad = np.zeros((x.size // 256 + RUN - 1) // RUN, np.bool_)
        _quantize(kind, fmt.type_size, x, out, bad)
        raise_on_nonfinite(rows, bad)
        return out.reshape(n_rows, -1)

    kernel.__name__ = f"{qtype.lower()}_cpu"
    return kernel


KINDS = {"TQ1_0": 1, "TQ2_0": 2}
for _name, _kind in KINDS.items():
    _make(_name, _kind)
