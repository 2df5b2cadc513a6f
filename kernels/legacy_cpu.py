"""numba CPU kernels for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. Without an imatrix: legacy_lanes.py (SIMD
across blocks); with one: the per-block code of legacy_ops.py (shared with CUDA) over all blocks
in parallel (prange over chunks of CHUNK blocks)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_common import CHUNK, flat, row_mean_squares, set_threads, weights_or_dummy
from .legacy_lanes import quantize_ref, quantize_weighted_qx
from .legacy_ops import legacy_block
from .registry import register

KINDS = {"Q8_0": (0, 34), "Q4_0": (1, 18), "Q4_1": (2, 20), "Q5_0": (3, 22), "Q5_1": (4, 24)}


@njit(parallel=True, cache=True, error_model="numpy")
def _quantize(kind, type_size, x, n_per_row, qw, use_w, sig, out):
    nb = n_per_row // 32
    total = x.size // 32
    n_tasks = (total + CHUNK - 1) // CHUNK
    for t in prange(n_tasks):
        wbuf = np.empty(32, np.float32)
        L = np.empty(32, np.int32)
        Laux = np.empty(32, np.int32)
        res = np.empty(1, np.float32)
        for blk in range(t * CHUNK, min(total, (t + 1) * CHUNK)):
            r = blk // nb
            b = blk - r * nb
            legacy_block(kind, x, blk * 32, use_w, qw, b * 32, sig[r], out, blk * type_size,
                         wbuf, L, Laux, res)


def _make(qtype: str):
    kind, type_size = KINDS[qtype]

    @register(qtype, "cpu")
    def kernel(rows, imatrix=None, threads=None):
        set_threads(threads)
        n_rows, n_per_row = rows.shape
        x = flat(rows)
        # Q8_0 has no imatrix path in ggml (quantize_q8_0 ignores quant_weights)
        use_w = imatrix is not None and qtype != "Q8_0"
        out = np.empty(n_rows * (n_per_row // 32) * type_size, np.uint8)
        if not use_w:       # ggml's quantize_row_*_ref, SIMD across blocks
            quantize_ref(kind, type_size, x, out)
            return out.reshape(n_rows, -1)
        sig = row_mean_squares(x, n_per_row)
        if kind in (1, 3):  # Q4_0 / Q5_0: make_qx_quants, SIMD across blocks
            quantize_weighted_qx(kind, type_size, x, n_per_row, weights_or_dummy(imatrix), sig, out)
            return out.reshape(n_rows, -1)
        _quantize(kind, type_size, x, n_per_row, weights_or_dummy(imatrix), use_w, sig, out)
        return out.reshape(n_rows, -1)

    kernel.__name__ = f"{qtype.lower()}_cpu"
    return kernel


for _t in KINDS:
    _make(_t)
