"""numba CPU kernels for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, all in cpu_lanes.py (SIMD across blocks,
threads over batches of blocks): ggml's reference path without an imatrix, make_qx_quants
(Q4_0/Q5_0) or make_qkx3_quants (Q4_1/Q5_1) with one."""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared.cpu_common import flat, raise_on_nonfinite, row_mean_squares, set_threads, weights_or_dummy
from ..types import family_types, get_format
from .cpu_lanes import LANES, quantize_ref, quantize_weighted_affine, quantize_weighted_qx

# the per-block code's switch (block_ops.legacy_block, cpu_lanes): which legacy type
KINDS = {"Q8_0": 0, "Q4_0": 1, "Q4_1": 2, "Q5_0": 3, "Q5_1": 4}
BLOCK = get_format("Q8_0").block_size       # 32 weights per block, for every legacy type


def _make(qtype: str):
    kind, type_size = KINDS[qtype], get_format(qtype).type_size

    @register(qtype, "cpu")
    def kernel(rows, imatrix=None, threads=None):
        set_threads(threads)
        n_rows, n_per_row = rows.shape
        x = flat(rows)
        # Q8_0 has no imatrix path in ggml (quantize_q8_0 ignores quant_weights)
        use_w = imatrix is not None and qtype != "Q8_0"
        out = np.empty(n_rows * (n_per_row // BLOCK) * type_size, np.uint8)
        bad = np.zeros((x.size // BLOCK + LANES - 1) // LANES, np.bool_)   # NaN/Inf per batch
        if not use_w:       # ggml's quantize_row_*_ref, SIMD across blocks
            quantize_ref(kind, type_size, x, out, bad)
        else:
            sig = row_mean_squares(x, n_per_row)
            # SIMD across blocks: Q4_0/Q5_0 make_qx_quants, Q4_1/Q5_1 make_qkx3_quants
            search = quantize_weighted_qx if kind in (1, 3) else quantize_weighted_affine
            search(kind, type_size, x, n_per_row, weights_or_dummy(imatrix), sig, out, bad)
        raise_on_nonfinite(rows, bad)
        return out.reshape(n_rows, -1)

    kernel.__name__ = f"{qtype.lower()}_cpu"
    return kernel


for _t in family_types("legacy"):
    _make(_t.name)
