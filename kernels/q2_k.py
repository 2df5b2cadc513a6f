"""Q2_K: super-blocks of 256 weights = 16 sub-blocks of 16, 2-bit levels with a 4-bit scale and
a 4-bit min per sub-block, fp16 `d` and `dmin`. 84 bytes:

    scales[16] (scale | min << 4) | qs[64] (four 2-bit levels per byte) | d (fp16) | dmin (fp16)

Without imatrix: quantize_row_q2_K_ref (make_qkx2_quants with |x| weights, mean abs deviation,
15 steps); with one: quantize_row_q2_K_impl (make_qkx3_quants + make_qp_quants for the scales).
"""
from __future__ import annotations

import numpy as np

from . import kquant_search as ks
from .q4_k import QK_K, superblock_weights
from .registry import register

F32 = np.float32


def search_q2_k(x: np.ndarray, qw: np.ndarray | None):
    """Returns (d fp16 bits (S,), dmin fp16 bits (S,), scales bytes (S, 16), L (S, 256))."""
    S = x.shape[0]
    xs = x.reshape(S * 16, 16)
    if qw is None:  # quantize_row_q2_K_ref
        scales, mins, L = ks.make_qkx_quants(xs, np.abs(xs), 3, -0.5, 0.1, 15, True, qkx3=False)
        scales, mins = scales.reshape(S, 16), mins.reshape(S, 16)
        max_scale, max_min = ks.running_max(scales), ks.running_max(mins)
        with np.errstate(all="ignore"):
            ls = ks.nearest_int((F32(15) / max_scale)[:, None] * scales)
            lm = ks.nearest_int((F32(15) / max_min)[:, None] * mins)
        ls = np.where((max_scale > 0)[:, None], ls & 0xFF, 0)
        sb = np.where((max_min > 0)[:, None], (ls | (lm << 4)) & 0xFF, ls)
        d = np.where(max_scale > 0, max_scale / F32(15), F32(0))
        dmin = np.where(max_min > 0, max_min / F32(15), F32(0))
    else:  # quantize_row_q2_K_impl
        sigma2 = ks.seq_sum_sq(x) / F32(QK_K)
        w = qw.reshape(S, 16, 16) * np.sqrt(sigma2[:, None, None] + x.reshape(S, 16, 16) ** 2)
        w = w.astype(F32).reshape(S * 16, 16)
        sw = ks.seq_sum(w).reshape(S, 16)
        scales, mins, L = ks.make_qkx_quants(xs, w, 3, -0.9, 0.05, 36, False, qkx3=True)
        d, ls = ks.make_qp_quants(scales.reshape(S, 16), 15, sw)
        dmin, lm = ks.make_qp_quants(mins.reshape(S, 16), 15, sw)
        sb = (ls | (lm << 4)) & 0xFF
    d16, dmin16 = ks.fp16_bits(d), ks.fp16_bits(dmin)
    dd = d16.view(np.float16).astype(F32)[:, None] * (sb & 0xF).astype(F32)
    dm = dmin16.view(np.float16).astype(F32)[:, None] * (sb >> 4).astype(F32)
    with np.errstate(all="ignore"):
        lq = ks.nearest_int((x.reshape(S, 16, 16) + dm[:, :, None]) / dd[:, :, None])
    L = np.where((dd != 0)[:, :, None], np.clip(lq, 0, 3), L.reshape(S, 16, 16))
    return d16, dmin16, sb.astype(np.uint8), L.reshape(S, QK_K)


def pack_q2_levels(L: np.ndarray) -> np.ndarray:
    """Levels (S, 256) in 0..3 -> qs (S, 64): byte l of half h holds L[128h + l + 32k] << 2k."""
    L = L.reshape(-1, 2, 4, 32).astype(np.int32)
    qs = L[:, :, 0] | (L[:, :, 1] << 2) | (L[:, :, 2] << 4) | (L[:, :, 3] << 6)
    return qs.astype(np.uint8).reshape(-1, 64)


def quantize_reference(rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
    n_rows = rows.shape[0]
    d16, dmin16, sb, L = search_q2_k(rows.reshape(-1, QK_K), superblock_weights(rows, imatrix))
    tail = np.concatenate([d16[:, None].view(np.uint8), dmin16[:, None].view(np.uint8)], axis=1)
    return np.concatenate([sb, pack_q2_levels(L), tail], axis=1).reshape(n_rows, rows.shape[1] // QK_K * 84)


@register("Q2_K", "reference")
def _reference(rows, imatrix, threads):
    return quantize_reference(rows, imatrix)


@register("Q2_K", "cpu")
def _cpu(rows, imatrix, threads):
    from . import kquant_cpu
    return kquant_cpu.quantize("Q2_K", rows, imatrix, threads)


@register("Q2_K", "cuda")
def _cuda(rows, imatrix, threads):
    from . import kquant_cuda
    return kquant_cuda.quantize("Q2_K", rows, imatrix)
