"""Numpy reference (the spec) for IQ2_XXS, IQ2_XS and IQ2_S (ggml-quants.c
quantize_row_iq2_{xxs,xs,s}_impl), vectorised over groups; block_ops.py is the same walk per
super-block for the numba kernels.

Per super-block of 256: sigma2 = sum(x*x)/256 (IQ2_S: twice that); weights w = qw*sqrt(sigma2 +
x*x) with an imatrix (IQ2_XXS and IQ2_XS require one), else 0.25*sigma2 + x*x (IQ2_S only).
Per group (32 weights: IQ2_XXS; 16: IQ2_XS, IQ2_S), each octet is folded to |x| with sign bits;
IQ2_XXS/XS keep an even number of negatives (an odd count flips back the weight with the least
w*x*x) and store 7 bits. Groups whose max |x| is below GROUP_MAX_EPS (IQ2_S: 1e-8) stay zero.
Trial inverse scales (5 + 0.1*is)/max, is in -9..9 (IQ2_XXS: /(3*make_qp_quants scale), is in
-6..6), map each octet to levels clamp(nearest_int(0.5*(id*x - 1)), 0, 2); an octet off the
grid moves to the nearest listed neighbour (grid.py) in sqrt(w)-weighted distance; the best
trial by (sum w*x*q)^2 / sum w*q*q (q = 2l+1) wins; off-grid octets (IQ2_XXS: all) are then
re-levelled against the least-squares scale. Group scales become 4-bit l = nearest_int(0.5 *
(s/d - 1)) against d = max_scale/31 (IQ2_S stores d*0.9875).
Layouts: IQ2_XXS {fp16 d; uint32 q2[16]: per group 4 grid-index bytes, then 4x7 sign bits |
scale << 28}; IQ2_XS {fp16 d; uint16 qs[32] = index | signs << 9; uint8 scales[8] (nibbles)};
IQ2_S {fp16 d; uint8 qs[32] index low byte; uint8 signs[32]; uint8 qh[8] index bits 8-9;
uint8 scales[8]}.
"""
from __future__ import annotations

import functools

import numpy as np

from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from ..shared.reference_searches import make_qp_quants, running_max
from .grid import tables

EPS = {"IQ2_XXS": c.GROUP_MAX_EPS, "IQ2_XS": c.GROUP_MAX_EPS, "IQ2_S": F32(1e-8)}
SHIFTS = 2 * np.arange(8)


@functools.lru_cache(maxsize=None)
def _padded(qtype: str):
    """(points as float32 (grid, 8), kmap, list row of each off-grid u, lists padded with -1)."""
    t = tables(qtype)
    off = np.flatnonzero(t.kmap < 0)
    off = off[-t.kmap[off] - 1 < t.neighbours.size]        # the u that have a list
    starts = -t.kmap[off] - 1
    counts = t.neighbours[starts].astype(np.int64)
    pad = np.full((len(off), int(counts.max())), -1, np.int64)
    for r, (s, n) in enumerate(zip(starts, counts)):
        pad[r, :n] = t.neighbours[s + 1:s + 1 + n]
    row = np.full(t.kmap.size, -1, np.int64)
    row[off] = np.arange(len(off))
    return t.points.reshape(-1, 8).astype(F32), t.kmap, row, pad


def _levels(xval, iscale):
    """Levels of every octet against the per-group iscale, and each octet's packed u."""
    with np.errstate(all="ignore"):
        l = np.clip(c.nearest_int(F32(0.5) * (iscale[:, None] * xval - F32(1))), 0, 2)
    u = (l.reshape(l.shape[0], -1, 8) << SHIFTS).sum(axis=2)
    return l, u


def _to_neighbours(qtype, L, u, todo, xval, waux, scale):
    """iq2_find_best_neighbour for every octet with todo set and u off the grid: L (groups, n)
    takes the levels of the listed point nearest to xval/scale (first of equals)."""
    pts, kmap, row, pad = _padded(qtype)
    g, k = np.nonzero(todo & (kmap[u] < 0))
    if not g.size:
        return
    idx = pad[row[u[g, k]]]                                    # (m, max_list)
    p = pts[np.maximum(idx, 0)]                                # (m, max_list, 8)
    xs = xval.reshape(xval.shape[0], -1, 8)[g, k]
    ws = waux.reshape(waux.shape[0], -1, 8)[g, k]
    d2 = np.zeros(idx.shape, F32)
    with np.errstate(all="ignore"):
        for i in range(8):
            diff = scale[g][:, None] * p[:, :, i] - xs[:, None, i]
            d2 = d2 + ws[:, None, i] * diff * diff
    d2 = np.where(idx >= 0, d2, np.inf)
    best = idx[np.arange(len(g)), np.argmin(d2, axis=1)]
    L3 = L.reshape(L.shape[0], -1, 8)
    L3[g, k] = (pts[best].astype(np.int64) - 1) // 2


def _sums(weight, xval, L):
    q = (2 * L + 1).astype(F32)
    sumqx = np.zeros(len(L), F32)
    sumq2 = np.zeros(len(L), F32)
    for i in range(L.shape[1]):
        sumqx = sumqx + weight[:, i] * xval[:, i] * q[:, i]
        sumq2 = sumq2 + weight[:, i] * q[:, i] * q[:, i]
    return sumqx, sumq2


def _fold_signs(xg, weight, parity):
    """(|x| per octet, the sign bits of each octet (G, n8)) as quantize_row_iq2_* folds them."""
    xval = np.where(xg >= 0, xg, -xg).astype(F32)
    neg = (xg < 0).reshape(len(xg), -1, 8)
    signs = (neg << np.arange(8)).sum(axis=2)
    if parity:
        x8 = xg.reshape(len(xg), -1, 8)
        cost = weight.reshape(x8.shape) * x8 * x8
        odd = neg.sum(axis=2) % 2 == 1
        g, k = np.nonzero(odd)
        imin = np.argmin(cost[g, k], axis=1)
        v8 = xval.reshape(x8.shape)
        v8[g, k, imin] = -v8[g, k, imin]
        signs[g, k] ^= 1 << imin
        signs &= 127
    return xval, signs


def _search(qtype, weight, waux, xval):
    """The scale search of one group per row; returns (scale, levels, dropped)."""
    G, n = xval.shape
    n8 = n // 8
    mx = xval[:, 0].copy()
    for i in range(1, n):
        mx = np.where(mx > xval[:, i], mx, xval[:, i])
    dropped = mx < EPS[qtype]
    L = np.zeros((G, n), np.int64)
    best = np.zeros(G, F32)
    with np.errstate(all="ignore"):
        if qtype == "IQ2_XXS":
            scale, _ = make_qp_quants(xval, 4, weight)
            top = scale * F32(3)
            dropped |= ~(top > 0)
            steps, on = range(-6, 7), np.zeros((G, n8), bool)
        else:
            scale, top = (mx / F32(5)).astype(F32), mx
            steps, on = range(-9, 10), np.ones((G, n8), bool)
        for step in steps:
            iscale = ((F32(5) + F32(step) * F32(0.1)) / top).astype(F32)
            Laux, u = _levels(xval, iscale)
            on_aux = _padded(qtype)[1][u] >= 0
            _to_neighbours(qtype, Laux, u, np.ones_like(on_aux), xval, waux, F32(1) / iscale)
            sumqx, sumq2 = _sums(weight, xval, Laux)
            better = (sumq2 > 0) & (sumqx * sumqx > best * sumq2)
            scale = np.where(better, sumqx / sumq2, scale).astype(F32)
            best = np.where(better, scale * sumqx, best).astype(F32)
            L = np.where(better[:, None], Laux, L)
            if qtype != "IQ2_XXS":              # IQ2_XXS re-levels every octet at the end
                on = np.where(better[:, None], on_aux, on)
        fix = (~on).any(axis=1) & (scale > 0)
        iscale = (F32(1) / scale).astype(F32)
        Lf, u = _levels(xval, iscale)
        todo = fix[:, None] & ~on
        _to_neighbours(qtype, Lf, u, todo, xval, waux, scale)
        L = np.where(np.repeat(todo, 8, axis=1), Lf, L)
        sumqx, sumq2 = _sums(weight, xval, L)
        scale = np.where(fix & (sumq2 > 0), sumqx / sumq2, scale).astype(F32)
    return scale, L, dropped


def _quantize(qtype, rows, imatrix):
    n_rows = rows.shape[0]
    xs = c.f32(rows).reshape(-1, 256)
    S = len(xs)
    n = 32 if qtype == "IQ2_XXS" else 16
    sumx2 = c.seq_sum(xs * xs, axis=1)
    sigma2 = (F32(2) * sumx2 / F32(256) if qtype == "IQ2_S" else sumx2 / F32(256)).astype(F32)
    if imatrix is not None:
        qw = np.tile(c.f32(imatrix).reshape(-1, 256), (S // (imatrix.size // 256), 1))
        weight = (qw * np.sqrt(sigma2[:, None] + xs * xs)).astype(F32)
    else:
        weight = (F32(0.25) * sigma2[:, None] + xs * xs).astype(F32)
    weight = weight.reshape(-1, n)
    waux = np.sqrt(weight).astype(F32)
    xval, signs = _fold_signs(xs.reshape(-1, n), weight, qtype != "IQ2_S")
    scale, L, dropped = _search(qtype, weight, waux, xval)
    flip = ~dropped & (scale < 0)
    scale = np.where(flip, -scale, scale).astype(F32)
    signs = np.where(flip[:, None], signs ^ (255 if qtype == "IQ2_S" else 127), signs)
    scale = np.where(dropped, F32(0), scale).astype(F32)
    grid_index = _padded(qtype)[1][(L.reshape(len(L), -1, 8) << SHIFTS).sum(axis=2)]
    grid_index = np.where(dropped[:, None], 0, grid_index).astype(np.uint32)
    signs = np.where(dropped[:, None], 0, signs).astype(np.uint32)
    scales = scale.reshape(S, -1)
    max_scale = running_max(scales)
    with np.errstate(all="ignore"):
        d = (max_scale / F32(31)).astype(F32)
        ls = np.clip(c.nearest_int(F32(0.5) * ((F32(1) / d)[:, None] * scales - F32(1))), 0, 15)
    empty = max_scale == 0
    ls = np.where(empty[:, None], 0, ls).astype(np.uint8)
    return _pack(qtype, n_rows, d, empty, grid_index.reshape(S, -1), signs.reshape(S, -1), ls)


def _pack(qtype, n_rows, d, empty, gi, signs, ls):
    S = len(d)
    if qtype == "IQ2_S":
        d = d * F32(0.9875)
    dh = np.where(empty, 0, c.fp16_bits(d)).astype("<u2").view(np.uint8).reshape(S, 2)
    if qtype == "IQ2_XXS":
        g4, s4 = gi.reshape(S, 8, 4), signs.reshape(S, 8, 4)
        w0 = (g4 << (8 * np.arange(4, dtype=np.uint32))).sum(axis=2, dtype=np.uint32)
        w1 = (s4 << (7 * np.arange(4, dtype=np.uint32))).sum(axis=2, dtype=np.uint32)
        w1 |= ls.astype(np.uint32) << 28
        q2 = np.stack([w0, w1], axis=2).reshape(S, 16)
        q2 = np.where(empty[:, None], 0, q2).astype("<u4")
        return np.concatenate([dh, q2.view(np.uint8).reshape(S, 64)], axis=1).reshape(n_rows, -1)
    scales = (ls[:, 0::2] | (ls[:, 1::2] << 4)).astype(np.uint8)
    if qtype == "IQ2_XS":
        qs = np.where(empty[:, None], 0, gi | (signs << 9)).astype("<u2")
        return np.concatenate([dh, qs.view(np.uint8).reshape(S, 64), scales],
                              axis=1).reshape(n_rows, -1)
    qh = ((gi >> 8).reshape(S, 8, 4) << (2 * np.arange(4, dtype=np.uint32))).sum(axis=2)
    return np.concatenate([dh, (gi & 255).astype(np.uint8), signs.astype(np.uint8),
                           qh.astype(np.uint8), scales], axis=1).reshape(n_rows, -1)


@register("IQ2_XXS", "reference")
def iq2_xxs(rows, imatrix=None, threads=None):
    return _quantize("IQ2_XXS", rows, imatrix)


@register("IQ2_XS", "reference")
def iq2_xs(rows, imatrix=None, threads=None):
    return _quantize("IQ2_XS", rows, imatrix)


@register("IQ2_S", "reference")
def iq2_s(rows, imatrix=None, threads=None):
    return _quantize("IQ2_S", rows, imatrix)
