"""Q5_K: like Q4_K (same 6-bit scales/mins and scale search, `q4_k.search_q45_k`) with 5-bit
levels; the fifth bit goes to qh. 176 bytes:

    d (fp16) | dmin (fp16) | scales[12] | qh[32] | qs[128]

Without imatrix: quantize_row_q5_K_ref (make_qkx2_quants, rmin -0.5, rdelta 0.1, 15 steps);
with one: quantize_row_q5_K_impl (make_qkx3_quants + make_qp_quants).
"""
from __future__ import annotations

import numpy as np

from .q4_k import QK_K, _header, search_q45_k, superblock_weights
from .registry import register


def pack_q5_levels(L: np.ndarray) -> np.ndarray:
    """Levels (S, 256) in 0..31 -> qh (S, 32) + qs (S, 128) bytes, as ggml lays them out."""
    L4 = L.reshape(-1, 4, 64).astype(np.int32)
    lo, hi = L4[:, :, :32], L4[:, :, 32:]
    qs = ((lo & 0xF) | ((hi & 0xF) << 4)).astype(np.uint8).reshape(-1, 128)
    shift = 2 * np.arange(4)[None, :, None]
    qh = (((lo >> 4) << shift) | ((hi >> 4) << (shift + 1))).sum(axis=1).astype(np.uint8)
    return np.concatenate([qh, qs], axis=1)


def quantize_reference(rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
    n_rows = rows.shape[0]
    d16, dmin16, q, L = search_q45_k(rows.reshape(-1, QK_K), superblock_weights(rows, imatrix),
                                      31, -0.5, 0.1, 15, clamp_qp=True)
    return np.concatenate([_header(d16, dmin16, q), pack_q5_levels(L)], axis=1).reshape(n_rows, rows.shape[1] // QK_K * 176)


@register("Q5_K", "reference")
def _reference(rows, imatrix, threads):
    return quantize_reference(rows, imatrix)


@register("Q5_K", "cpu")
def _cpu(rows, imatrix, threads):
    from . import kquant_cpu
    return kquant_cpu.quantize("Q5_K", rows, imatrix, threads)


@register("Q5_K", "cuda")
def _cuda(rows, imatrix, threads):
    from . import kquant_cuda
    return kquant_cuda.quantize("Q5_K", rows, imatrix)
