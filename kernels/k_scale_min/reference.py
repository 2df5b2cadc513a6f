"""Numpy reference (the spec) for the K-quants with a scale and a min per sub-block:
Q4_K, Q5_K (8 sub-blocks of 32, 6-bit scales/mins) and Q2_K (16 sub-blocks of 16, 4-bit).
As ggml_quantize_chunk picks them: quantize_row_qN_K_ref without imatrix (make_qkx2_quants),
quantize_row_qN_K_impl with one (make_qkx3_quants + make_qp_quants for the scales).

Q4_K, 144 bytes: d (fp16) | dmin (fp16) | scales[12] (6-bit scales/mins, get_scale_min_k4) | qs[128]
Q5_K, 176 bytes: d (fp16) | dmin (fp16) | scales[12] | qh[32] (fifth bits) | qs[128]
Q2_K,  84 bytes: scales[16] (scale | min << 4) | qs[64] (four 2-bit levels per byte) | d | dmin
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared import reference_searches as ks
from ..types import get_format

F32 = np.float32
QK_K = get_format("Q4_K").block_size        # 256: every type of this family
TYPE_SIZE = {name: get_format(name).type_size for name in ("Q2_K", "Q4_K", "Q5_K")}


def superblock_weights(rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray | None:
    """The imatrix row broadcast to every row, as (n_superblocks, 256); ggml indexes
    quant_weights by the super-block's position in its row."""
    if imatrix is None:
        return None
    return np.broadcast_to(imatrix[None, :], rows.shape).reshape(-1, QK_K)


def search_q45_k(x: np.ndarray, qw: np.ndarray | None, nmax: int, rmin: float, rdelta: float,
                 nstep: int, clamp_qp: bool):
    """Scales, mins and levels of Q4_K (nmax 15) / Q5_K (nmax 31) super-blocks x (S, 256).

    Returns (d fp16 bits (S,), dmin fp16 bits (S,), scales bytes (S, 12), L (S, 256))."""
    S = x.shape[0]
    xs = x.reshape(S * 8, 32)
    if qw is None:  # quantize_row_qN_K_ref
        av_x = np.sqrt(ks.seq_sum_sq(xs) / F32(32))
        w = av_x[:, None] + np.abs(xs)
        scales, mins, L = ks.make_qkx_quants(xs, w, nmax, rmin, rdelta, nstep, False, qkx3=False)
        scales, mins = scales.reshape(S, 8), mins.reshape(S, 8)
        max_scale, max_min = ks.running_max(scales), ks.running_max(mins)
        with np.errstate(all="ignore"):
            inv_scale = np.where(max_scale > 0, F32(63) / max_scale, F32(0))
            inv_min = np.where(max_min > 0, F32(63) / max_min, F32(0))
        ls = np.minimum(63, ks.nearest_int(inv_scale[:, None] * scales) & 0xFF)
        lm = np.minimum(63, ks.nearest_int(inv_min[:, None] * mins) & 0xFF)
        d, dmin = max_scale / F32(63), max_min / F32(63)
    else:  # quantize_row_qN_K_impl with quant_weights
        sigma2 = F32(2) * ks.seq_sum_sq(x) / F32(QK_K)
        w = (qw.reshape(S, 8, 32) * np.sqrt(sigma2[:, None, None] + x.reshape(S, 8, 32) ** 2))
        w = w.astype(F32).reshape(S * 8, 32)
        sw = ks.seq_sum(w).reshape(S, 8)
        scales, mins, L = ks.make_qkx_quants(xs, w, nmax, -0.9, 0.05, 36, False, qkx3=True)
        d, ls = ks.make_qp_quants(scales.reshape(S, 8), 63, sw)
        dmin, lm = ks.make_qp_quants(mins.reshape(S, 8), 63, sw)
        if clamp_qp:  # Q5_K clamps to 63 here, Q4_K does not
            ls, lm = np.minimum(63, ls), np.minimum(63, lm)
    q = pack_scale_min_k4(ls, lm)
    d16, dmin16 = ks.fp16_bits(d), ks.fp16_bits(dmin)
    # Requantize every weight against the scales as stored (fp16 d times the 6-bit scale).
    sc, m = get_scale_min_k4(q)
    dd = d16.view(np.float16).astype(F32)[:, None] * sc.astype(F32)
    dm = dmin16.view(np.float16).astype(F32)[:, None] * m.astype(F32)
    with np.errstate(all="ignore"):
        lq = ks.nearest_int((x.reshape(S, 8, 32) + dm[:, :, None]) / dd[:, :, None])
    L = np.where((dd != 0)[:, :, None], np.clip(lq, 0, nmax), L.reshape(S, 8, 32))
    return d16, dmin16, q, L.reshape(S, QK_K)


def pack_scale_min_k4(ls: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Q4_K/Q5_K: 8 six-bit scales and mins (S, 8) into 12 bytes (S, 12), as ggml stores them."""
    ls = ls.astype(np.int32) & 0xFF
    lm = lm.astype(np.int32) & 0xFF
    q = np.zeros((ls.shape[0], 12), np.int32)
    for j in range(8):
        if j < 4:
            q[:, j] = ls[:, j]
            q[:, j + 4] = lm[:, j]
        else:
            q[:, j + 4] = ((ls[:, j] & 0xF) | ((lm[:, j] & 0xF) << 4)) & 0xFF
            q[:, j - 4] = (q[:, j - 4] | ((ls[:, j] >> 4) << 6)) & 0xFF
            q[:, j] = (q[:, j] | ((lm[:, j] >> 4) << 6)) & 0xFF
    return q.astype(np.uint8)


def get_scale_min_k4(q: np.ndarray):
    """Inverse of pack_scale_min_k4 (ggml's get_scale_min_k4 for j = 0..7): (sc, m) each (S, 8)."""
    q = q.astype(np.int32)
    sc = np.zeros((q.shape[0], 8), np.int32)
    m = np.zeros_like(sc)
    for j in range(8):
        if j < 4:
            sc[:, j] = q[:, j] & 63
            m[:, j] = q[:, j + 4] & 63
        else:
            sc[:, j] = (q[:, j + 4] & 0xF) | ((q[:, j - 4] >> 6) << 4)
            m[:, j] = (q[:, j + 4] >> 4) | ((q[:, j] >> 6) << 4)
    return sc, m


def _header(d16, dmin16, q):
    return np.concatenate([d16[:, None].view(np.uint8), dmin16[:, None].view(np.uint8), q], axis=1)


def quantize_reference_q4_k(rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
    n_rows, n = rows.shape
    x = rows.reshape(-1, QK_K)
    d16, dmin16, q, L = search_q45_k(x, superblock_weights(rows, imatrix), 15, -1.0, 0.1, 20,
                                      clamp_qp=False)
    L4 = L.reshape(-1, 4, 64)
    qs = (L4[:, :, :32] | (L4[:, :, 32:] << 4)).astype(np.uint8).reshape(-1, 128)
    out = np.concatenate([_header(d16, dmin16, q), qs], axis=1)
    return out.reshape(n_rows, n // QK_K * TYPE_SIZE["Q4_K"])


@register("Q4_K", "reference")
def q4_k_reference(rows, imatrix, threads):
    return quantize_reference_q4_k(rows, imatrix)



def pack_q5_levels(L: np.ndarray) -> np.ndarray:
    """Levels (S, 256) in 0..31 -> qh (S, 32) + qs (S, 128) bytes, as ggml lays them out."""
    L4 = L.reshape(-1, 4, 64).astype(np.int32)
    lo, hi = L4[:, :, :32], L4[:, :, 32:]
    qs = ((lo & 0xF) | ((hi & 0xF) << 4)).astype(np.uint8).reshape(-1, 128)
    shift = 2 * np.arange(4)[None, :, None]
    qh = (((lo >> 4) << shift) | ((hi >> 4) << (shift + 1))).sum(axis=1).astype(np.uint8)
    return np.concatenate([qh, qs], axis=1)


def quantize_reference_q5_k(rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
    n_rows = rows.shape[0]
    d16, dmin16, q, L = search_q45_k(rows.reshape(-1, QK_K), superblock_weights(rows, imatrix),
                                      31, -0.5, 0.1, 15, clamp_qp=True)
    out = np.concatenate([_header(d16, dmin16, q), pack_q5_levels(L)], axis=1)
    return out.reshape(n_rows, rows.shape[1] // QK_K * TYPE_SIZE["Q5_K"])


@register("Q5_K", "reference")
def q5_k_reference(rows, imatrix, threads):
    return quantize_reference_q5_k(rows, imatrix)



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


def quantize_reference_q2_k(rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
    n_rows = rows.shape[0]
    d16, dmin16, sb, L = search_q2_k(rows.reshape(-1, QK_K), superblock_weights(rows, imatrix))
    tail = np.concatenate([d16[:, None].view(np.uint8), dmin16[:, None].view(np.uint8)], axis=1)
    out = np.concatenate([sb, pack_q2_levels(L), tail], axis=1)
    return out.reshape(n_rows, rows.shape[1] // QK_K * TYPE_SIZE["Q2_K"])


@register("Q2_K", "reference")
def q2_k_reference(rows, imatrix, threads):
    return quantize_reference_q2_k(rows, imatrix)
