"""Numpy reference (the spec) for IQ4_NL and IQ4_XS (ggml-quants.c quantize_row_iq4_nl_impl).

ggml_quantize_chunk always takes quantize_iq4_nl / quantize_iq4_xs (ntry = 7), with or without
an imatrix. Per 32-weight block: weights w = x*x, or qw * sqrt(sigma2 + x*x) with an imatrix,
where sigma2 = 2 * sum(x*x) / super_block_size over the (super-)block; the scale starts at
max/127 and is refined by least squares against 15 trial inverse scales (itry - 127) / max,
each mapping the weights to the nearest codebook value (best_index_int8). IQ4_NL stores that
scale as fp16 and re-picks the indices with its inverse; IQ4_XS quantizes the eight block
scales to 6 bits against d = -max_scale / 32 and re-picks each block's indices against d * l.
Layouts: IQ4_NL {fp16 d; uint8 qs[16]}; IQ4_XS {fp16 d; uint16 scales_h; uint8 scales_l[4];
uint8 qs[128]}, qs[16*i + j] = L[32*i + j] | L[32*i + 16 + j] << 4.
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from ..types import get_format
from .codebook import IQ4NL_VALUES

QK4_NL = get_format("IQ4_NL").block_size       # 32
QK_K = get_format("IQ4_XS").block_size         # 256
NTRY = 7


def best_index(a: np.ndarray) -> np.ndarray:
    """ggml's best_index_int8(16, kvalues_iq4nl, a) elementwise: the bracketing pair found by the
    binary search, then `a - lo < hi - a ? lower : upper`; NaN ends at the top index."""
    cnt = (a[..., None] >= IQ4NL_VALUES).sum(axis=-1)
    up = np.clip(cnt, 1, 15)
    lo, hi = IQ4NL_VALUES[up - 1], IQ4NL_VALUES[up]
    with np.errstate(invalid="ignore"):
        idx = np.where(a - lo < hi - a, up - 1, up)
    return np.where(np.isnan(a), 15, idx).astype(np.int32)


def _sums(x, w, iscale):
    """sum(w*q*x), sum(w*q*q) over each block in C order, q the codebook value of iscale*x."""
    with np.errstate(all="ignore"):
        q = IQ4NL_VALUES[best_index(iscale[:, None] * x)]
    sumqx = np.zeros(x.shape[0], F32)
    sumq2 = np.zeros(x.shape[0], F32)
    for j in range(x.shape[1]):
        wq = w[:, j] * q[:, j]
        sumqx = sumqx + wq * x[:, j]
        sumq2 = sumq2 + wq * q[:, j]
    return sumqx, sumq2


def block_scales(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The searched scale of each 32-weight block (0 for a block below GROUP_MAX_EPS)."""
    amax, mx = c.first_absmax(x)
    zero = amax < c.GROUP_MAX_EPS
    with np.errstate(all="ignore"):
        d = (-mx / F32(IQ4NL_VALUES[0])).astype(F32)
        sumqx, sumq2 = _sums(x, w, (F32(1) / d).astype(F32))
        d = np.where(sumq2 > 0, sumqx / sumq2, F32(0)).astype(F32)
        best = (d * sumqx).astype(F32)
        for itry in range(-NTRY, NTRY + 1):
            iscale = (F32(itry + int(IQ4NL_VALUES[0])) / mx).astype(F32)
            sumqx, sumq2 = _sums(x, w, iscale)
            better = (sumq2 > 0) & (sumqx * sumqx > best * sumq2)
            d = np.where(better, sumqx / sumq2, d).astype(F32)
            best = np.where(better, d * sumqx, best).astype(F32)
    return np.where(zero, F32(0), d).astype(F32)


def block_weights(x: np.ndarray, imatrix, super_block: int) -> np.ndarray:
    """x*x, or qw * sqrt(sigma2 + x*x), sigma2 = sum(x*x) * (2 / super_block) per super-block;
    x is (n_super_blocks, super_block), imatrix the row's (tiled over the super-blocks)."""
    if imatrix is None:
        return x * x
    sigma2 = c.seq_sum(x * x, axis=1) * F32(2.0 / super_block)
    qw = np.tile(imatrix.reshape(-1, super_block), (x.shape[0] // (imatrix.size // super_block), 1))
    return (qw * np.sqrt(sigma2[:, None] + x * x)).astype(F32)


def pack_indices(L: np.ndarray) -> np.ndarray:
    """(blocks, 32*k) indices -> (blocks, 16*k) bytes: qs[16i+j] = L[32i+j] | L[32i+16+j] << 4."""
    g = L.reshape(L.shape[0], -1, 2, 16).astype(np.uint8)
    return (g[:, :, 0] | (g[:, :, 1] << 4)).reshape(L.shape[0], -1)


def _inverse(v: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(v != 0, F32(1) / v, F32(0)).astype(F32)


@register("IQ4_NL", "reference")
def iq4_nl(rows, imatrix=None, threads=None):
    n_rows = rows.shape[0]
    x = c.f32(rows).reshape(-1, QK4_NL)
    scale = block_scales(x, block_weights(x, imatrix, QK4_NL))
    with np.errstate(invalid="ignore", over="ignore"):
        L = best_index(_inverse(scale)[:, None] * x)
    out = np.concatenate([c.fp16_bits(scale).view(np.uint8).reshape(-1, 2), pack_indices(L)],
                         axis=1)
    return out.reshape(n_rows, -1)


@register("IQ4_XS", "reference")
def iq4_xs(rows, imatrix=None, threads=None):
    n_rows = rows.shape[0]
    xs = c.f32(rows).reshape(-1, QK_K)
    x = xs.reshape(-1, 32)
    w = block_weights(xs, imatrix, QK_K).reshape(-1, 32)
    scales = block_scales(x, w).reshape(-1, QK_K // 32)
    _, max_scale = c.first_absmax(scales)
    d = (-max_scale / F32(32)).astype(F32)
    l = np.clip(c.nearest_int(_inverse(d)[:, None] * scales), -32, 31)
    dl = (d[:, None] * l.astype(F32)).astype(F32)
    with np.errstate(invalid="ignore", over="ignore"):
        L = best_index(_inverse(dl).reshape(-1, 1) * x)
    ls = (l + 32).astype(np.uint32)
    scales_l = ((ls[:, 0::2] & 0xF) | ((ls[:, 1::2] & 0xF) << 4)).astype(np.uint8)
    scales_h = np.bitwise_or.reduce((ls >> 4) << (2 * np.arange(8, dtype=np.uint32)), axis=1)
    out = np.concatenate([c.fp16_bits(d).view(np.uint8).reshape(-1, 2),
                          scales_h.astype("<u2").view(np.uint8).reshape(-1, 2), scales_l,
                          pack_indices(L.reshape(-1, QK_K))], axis=1)
    return out.reshape(n_rows, -1)
