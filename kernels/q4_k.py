"""Q4_K: super-blocks of 256 weights = 8 sub-blocks of 32, 4-bit levels with a 6-bit scale and
a 6-bit min per sub-block, fp16 super-scale `d` and `dmin`. 144 bytes:

    d (fp16) | dmin (fp16) | scales[12] (6-bit scales/mins, get_scale_min_k4) | qs[128] (nibbles)

The numpy reference here is the spec (quantize_row_q4_K_ref without imatrix, quantize_row_q4_K_impl
with one, as ggml_quantize_chunk picks them); Q5_K shares the scale search (`search_q45_k`).
"""
from __future__ import annotations

import numpy as np

from . import kquant_search as ks
from .registry import register

F32 = np.float32
QK_K = 256


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
    q = ks.pack_scale_min_k4(ls, lm)
    d16, dmin16 = ks.fp16_bits(d), ks.fp16_bits(dmin)
    # Requantize every weight against the scales as stored (fp16 d times the 6-bit scale).
    sc, m = ks.get_scale_min_k4(q)
    dd = d16.view(np.float16).astype(F32)[:, None] * sc.astype(F32)
    dm = dmin16.view(np.float16).astype(F32)[:, None] * m.astype(F32)
    with np.errstate(all="ignore"):
        lq = ks.nearest_int((x.reshape(S, 8, 32) + dm[:, :, None]) / dd[:, :, None])
    L = np.where((dd != 0)[:, :, None], np.clip(lq, 0, nmax), L.reshape(S, 8, 32))
    return d16, dmin16, q, L.reshape(S, QK_K)


def _header(d16, dmin16, q):
    return np.concatenate([d16[:, None].view(np.uint8), dmin16[:, None].view(np.uint8), q], axis=1)


def quantize_reference(rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
    n_rows, n = rows.shape
    x = rows.reshape(-1, QK_K)
    d16, dmin16, q, L = search_q45_k(x, superblock_weights(rows, imatrix), 15, -1.0, 0.1, 20,
                                      clamp_qp=False)
    L4 = L.reshape(-1, 4, 64)
    qs = (L4[:, :, :32] | (L4[:, :, 32:] << 4)).astype(np.uint8).reshape(-1, 128)
    return np.concatenate([_header(d16, dmin16, q), qs], axis=1).reshape(n_rows, n // QK_K * 144)


@register("Q4_K", "reference")
def _reference(rows, imatrix, threads):
    return quantize_reference(rows, imatrix)


@register("Q4_K", "cpu")
def _cpu(rows, imatrix, threads):
    from . import kquant_cpu
    return kquant_cpu.quantize("Q4_K", rows, imatrix, threads)


@register("Q4_K", "cuda")
def _cuda(rows, imatrix, threads):
    from . import kquant_cuda
    return kquant_cuda.quantize("Q4_K", rows, imatrix)
