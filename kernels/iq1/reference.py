"""Numpy reference (the spec) for IQ1_S and IQ1_M (ggml-quants.c quantize_row_iq1_s_impl,
quantize_row_iq1_m_impl).

Both split each 256-weight super-block into blocks (IQ1_S: 8 of 32, IQ1_M: 16 of 16) whose
weights take three levels q in {-1, 0, 1} + delta, delta = +-0.125 (IQ1_M: one sign per half
block). Per block: weights w = qw * sqrt(sigma2 + x*x) (sigma2 = 2 * sum(x*x) / 256), or x*x
for IQ1_M without an imatrix; below GROUP_MAX_EPS_IQ1_* the block is zero. The weights are
sorted ascending (glibc's qsort is a stable merge sort: ties keep their order) and every split
(i1 <= i2) of the sorted list into levels 0/1/2 is scored by least squares from prefix sums,
for each sign choice; the best split gives a scale and levels, flipped when the scale is
negative. Each group of 8 levels must be a grid pattern: off-grid ones take the neighbour
(grid.iq1_tables) closest to scale*q in weighted squared distance, and the scale is refit.
IQ1_S: fp16 d = max_scale/15 * 1.125; per block qs (grid index low bytes), qh = index high
bits | 3-bit scale << 12 | sign << 15. IQ1_M: 3-bit block scales in `scales`, the sign bits in
qh, and an fp16 super-scale refit over all blocks (* 1.1125) spread over the top nibbles of the
four 16-bit scale words.

ggml asserts an imatrix for IQ1_S (ggml_quantize_requires_imatrix); so do we, in one line.
"""
from __future__ import annotations

import numpy as np

from .. import ImatrixRequiredError
from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from .grid import iq1_tables

QK_K = 256
DELTA = F32(0.125)
EPS_S = F32(1e-12)          # GROUP_MAX_EPS_IQ1_S
EPS_M = F32(1e-7)           # GROUP_MAX_EPS_IQ1_M
FLT_MAX = F32(3.4028234663852886e38)
X_P = np.array([-1 + 0.125, 0.125, 1 + 0.125], F32)
X_M = np.array([-1 - 0.125, -0.125, 1 - 0.125], F32)


def _weights(xs: np.ndarray, qw: np.ndarray | None) -> np.ndarray:
    """(n_sb, 256) search weights: qw * sqrt(sigma2 + x*x), or x*x without an imatrix."""
    with np.errstate(over="ignore", invalid="ignore"):     # huge rows overflow as in C
        if qw is None:
            return xs * xs
        sigma2 = (F32(2) * c.seq_sum(xs * xs, axis=1)) / F32(QK_K)
        return (qw * np.sqrt(sigma2[:, None] + xs * xs)).astype(F32)


def _sorted_prefix(x: np.ndarray, w: np.ndarray):
    """Stable ascending order of each block, and the running sums of w*x and w in that order
    (column 0 = 0)."""
    idx = np.argsort(x, axis=1, kind="stable")
    n = x.shape[1]
    xs = np.take_along_axis(x, idx, axis=1)
    ws = np.take_along_axis(w, idx, axis=1)
    sx = np.zeros((x.shape[0], n + 1), F32)
    sw = np.zeros((x.shape[0], n + 1), F32)
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(n):
            sx[:, j + 1] = sx[:, j] + ws[:, j] * xs[:, j]
            sw[:, j + 1] = sw[:, j] + ws[:, j]
    return idx, xs, ws, sx, sw


def _better(best, sumqx, sumq2):
    with np.errstate(all="ignore"):
        return (sumq2 > 0) & (sumqx * sumqx > best * sumq2)


def _search_s(sx, sw):
    """IQ1_S: best (scale, i1, i2, shift) over every split and both signs, in ggml's order."""
    nb, n = sx.shape[0], sx.shape[1] - 1
    best = np.full(nb, -FLT_MAX, F32)
    scale = np.zeros(nb, F32)
    b1 = np.full(nb, -1)
    b2 = np.full(nb, -1)
    shift = np.zeros(nb, np.int32)
    with np.errstate(all="ignore"):
        for i1 in range(n + 1):
            for i2 in range(i1, n + 1):
                a, b, t = sx[:, i1] - sx[:, 0], sx[:, i2] - sx[:, i1], sx[:, n] - sx[:, i2]
                wa, wb, wt = sw[:, i1] - sw[:, 0], sw[:, i2] - sw[:, i1], sw[:, n] - sw[:, i2]
                for xv, sh in ((X_P, 1), (X_M, -1)):
                    sumqx = a * xv[0] + b * xv[1] + t * xv[2]
                    sumq2 = wa * xv[0] * xv[0] + wb * xv[1] * xv[1] + wt * xv[2] * xv[2]
                    m = _better(best, sumqx, sumq2)
                    scale = np.where(m, sumqx / sumq2, scale)
                    best = np.where(m, scale * sumqx, best)
                    b1 = np.where(m, i1, b1)
                    b2 = np.where(m, i2, b2)
                    shift = np.where(m, sh, shift)
    return scale, b1, b2, shift


_CP = (X_P[0] * X_P[0] - X_P[1] * X_P[1], X_P[1] * X_P[1] - X_P[2] * X_P[2])
_CM = (X_M[0] * X_M[0] - X_M[1] * X_M[1], X_M[1] * X_M[1] - X_M[2] * X_M[2])


def _half_prefix(idx, xs, ws):
    """IQ1_M: running sums of w*x and w in sorted order, kept apart for the two halves."""
    nb, n = xs.shape
    px = np.zeros((2, nb, n + 1), F32)
    pw = np.zeros((2, nb, n + 1), F32)
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(n):
            h = (idx[:, j] >= n // 2).astype(np.int64)
            wx = ws[:, j] * xs[:, j]
            for hh in (0, 1):
                on = h == hh
                px[hh, :, j + 1] = np.where(on, px[hh, :, j] + wx, px[hh, :, j])
                pw[hh, :, j + 1] = np.where(on, pw[hh, :, j] + ws[:, j], pw[hh, :, j])
    return px, pw


def _search_halves(px, pw):
    """IQ1_M: best (scale, i1, i2, k) over every split and the four sign pairs (k = 2*first
    half negative + second half negative), in ggml's order."""
    n = px.shape[2] - 1
    nb = px.shape[1]
    best = np.full(nb, -FLT_MAX, F32)
    scale = np.zeros(nb, F32)
    b1 = np.full(nb, -1)
    b2 = np.full(nb, -1)
    bk = np.full(nb, -1)
    txs, tws = px[:, :, n], pw[:, :, n]
    p2, m2 = X_P[2], X_M[2]
    with np.errstate(all="ignore"):
        for i1 in range(n + 1):
            for i2 in range(i1, n + 1):
                qx_p, qx_m, q2_p, q2_m = [], [], [], []
                for h in (0, 1):
                    sx = px[h, :, i1] + px[h, :, i2]
                    qx_p.append(txs[h] * p2 - sx)
                    qx_m.append(txs[h] * m2 - sx)
                    q2_p.append(tws[h] * p2 * p2 + pw[h, :, i1] * _CP[0] + pw[h, :, i2] * _CP[1])
                    q2_m.append(tws[h] * m2 * m2 + pw[h, :, i1] * _CM[0] + pw[h, :, i2] * _CM[1])
                sums = ((qx_p[0] + qx_p[1], q2_p[0] + q2_p[1]), (qx_p[0] + qx_m[1], q2_p[0] + q2_m[1]),
                        (qx_m[0] + qx_p[1], q2_m[0] + q2_p[1]), (qx_m[0] + qx_m[1], q2_m[0] + q2_m[1]))
                for k, (sumqx, sumq2) in enumerate(sums):
                    m = _better(best, sumqx, sumq2)
                    scale = np.where(m, sumqx / sumq2, scale)
                    best = np.where(m, scale * sumqx, best)
                    b1 = np.where(m, i1, b1)
                    b2 = np.where(m, i2, b2)
                    bk = np.where(m, k, bk)
    return scale, b1, b2, bk


def _levels(idx, b1, b2):
    """Levels 0/1/2 of each weight from the split of its block's sorted order."""
    rank = np.empty_like(idx)
    np.put_along_axis(rank, idx, np.arange(idx.shape[1])[None, :], axis=1)
    return np.where(rank < b1[:, None], 0, np.where(rank < b2[:, None], 1, 2)).astype(np.int64)


def _neighbour(tables, u, x8, w8, scale, xg):
    """iq1_find_best_neighbour2: the neighbour of off-grid pattern u with the least weighted
    squared distance of scale*xg[level] to x (first one on ties)."""
    levels, kmap, nbrs = tables
    start = -int(kmap[u]) - 1
    cand = nbrs[start + 1:start + 1 + int(nbrs[start])].astype(np.int64)
    lv = levels.reshape(-1, 8)[cand]
    d2 = np.zeros(cand.size, F32)
    with np.errstate(all="ignore"):
        for i in range(8):
            diff = scale * xg[lv[:, i]] - x8[i]
            d2 = d2 + w8[i] * diff * diff
    ok = np.flatnonzero(d2 < FLT_MAX)
    if not ok.size:         # ggml then scans the whole grid, reading past xval (a C bug)
        raise ValueError("IQ1: no grid neighbour within float range (weights too large)")
    return int(cand[ok[np.argmin(d2[ok])]])


def _place(tables, x, w, L, scale, signs):
    """Grid indices of each group of 8 levels (neighbours for off-grid groups) and the scale,
    refit when a group was off the grid. signs: (n_groups,) +1/-1, the group's delta sign."""
    levels, kmap, _ = tables
    ng = L.shape[0] // 8
    index = np.zeros(ng, np.int64)
    on_grid = True
    for k in range(ng):
        u = int((L[8 * k:8 * k + 8] << (2 * np.arange(8))).sum())
        g = int(kmap[u])
        if g < 0:
            on_grid = False
            xg = X_P if signs[k] > 0 else X_M
            g = _neighbour(tables, u, x[8 * k:8 * k + 8], w[8 * k:8 * k + 8], scale, xg)
        index[k] = g
    if not on_grid:
        sumqx = F32(0)
        sumq2 = F32(0)
        with np.errstate(all="ignore"):
            for k in range(ng):
                xg = X_P if signs[k] > 0 else X_M
                q = xg[levels[8 * index[k]:8 * index[k] + 8]]
                for j in range(8):
                    wq = w[8 * k + j] * q[j]
                    sumqx = F32(sumqx + wq * x[8 * k + j])
                    sumq2 = F32(sumq2 + wq * q[j])
        if sumqx > 0 and sumq2 > 0:
            scale = F32(sumqx / sumq2)
    return index, scale


def _superblocks(rows: np.ndarray, imatrix):
    xs = c.f32(rows).reshape(-1, QK_K)
    qw = None
    if imatrix is not None:
        qw = np.tile(c.f32(imatrix).reshape(-1, QK_K), (rows.shape[0], 1))
    return xs, qw


@register("IQ1_S", "reference")
def iq1_s(rows, imatrix=None, threads=None):
    if imatrix is None:
        raise ImatrixRequiredError("IQ1_S")
    tables = iq1_tables()
    xs, qw = _superblocks(rows, imatrix)
    nsb = xs.shape[0]
    x = xs.reshape(-1, 32)
    w = _weights(xs, qw).reshape(-1, 32)
    live = np.abs(x).max(axis=1) >= EPS_S
    idx, xsrt, wsrt, sx, sw = _sorted_prefix(x, w)
    scale, b1, b2, shift = _search_s(sx, sw)
    live &= (b1 >= 0) & (b2 >= 0) & (shift != 0)
    L = _levels(idx, b1, b2)
    neg = scale < 0
    L = np.where(neg[:, None], 2 - L, L)
    scale = np.where(neg, -scale, scale).astype(F32)
    shift = np.where(neg, -shift, shift)
    scales = np.zeros(x.shape[0], F32)
    qs = np.zeros((x.shape[0], 4), np.uint8)
    qh = np.zeros(x.shape[0], np.uint32)
    for b in np.flatnonzero(live):
        index, s = _place(tables, x[b], w[b], L[b], scale[b], np.full(4, shift[b]))
        qs[b] = index & 255
        qh[b] = int(((index >> 8) << (3 * np.arange(4))).sum())
        scales[b] = s
    shift = np.where(live, shift, 1)
    scales = scales.reshape(nsb, 8)
    max_scale = scales.max(axis=1)
    with np.errstate(all="ignore"):
        d = (max_scale / F32(15)).astype(F32)
        dfp = c.fp16_bits(np.where(max_scale > 0, d * F32(1.125), F32(0)).astype(F32))
        idd = (F32(1) / d).astype(F32)
        l = np.clip(c.nearest_int(F32(0.5) * (idd[:, None] * scales - F32(1))), 0, 7)
    l = np.where(shift.reshape(nsb, 8) == -1, l | 8, l)
    qh = qh.reshape(nsb, 8) | np.where(max_scale[:, None] > 0, l << 12, 0).astype(np.uint32)
    out = np.concatenate([dfp.view(np.uint8).reshape(-1, 2), qs.reshape(nsb, 32),
                          qh.astype("<u2").view(np.uint8).reshape(nsb, 16)], axis=1)
    return out.reshape(rows.shape[0], -1)


@register("IQ1_M", "reference")
def iq1_m(rows, imatrix=None, threads=None):
    tables = iq1_tables()
    levels = tables[0]
    xs, qw = _superblocks(rows, imatrix)
    nsb = xs.shape[0]
    x = xs.reshape(-1, 16)
    w = _weights(xs, qw).reshape(-1, 16)
    live = np.abs(x).max(axis=1) >= EPS_M
    idx, xsrt, wsrt, _, _ = _sorted_prefix(x, w)
    px, pw = _half_prefix(idx, xsrt, wsrt)
    scale, b1, b2, bk = _search_halves(px, pw)
    live &= (b1 >= 0) & (b2 >= 0) & (bk >= 0)
    L = _levels(idx, b1, b2)
    neg = scale < 0
    L = np.where(neg[:, None], 2 - L, L)
    scale = np.where(neg, -scale, scale).astype(F32)
    bk = np.where(neg, 3 - bk, bk)
    scales = np.zeros(x.shape[0], F32)
    index = np.zeros((x.shape[0], 2), np.int64)
    for b in np.flatnonzero(live):
        signs = np.array([-1 if bk[b] >= 2 else 1, -1 if bk[b] % 2 else 1])
        index[b], scales[b] = _place(tables, x[b], w[b], L[b], scale[b], signs)
    shifts = np.where(live, bk, 0)
    qs = (index & 255).astype(np.uint8)
    qh = ((index[:, 0] >> 8) | ((index[:, 1] >> 8) << 4)).astype(np.int64)
    out = np.zeros((nsb, 56), np.uint8)
    out[:, :32] = qs.reshape(nsb, 32)
    scales = scales.reshape(nsb, 16)
    max_scale = scales.max(axis=1)
    masks = np.array([0x00, 0x80, 0x08, 0x88])
    sign1 = np.where(shifts >= 2, -1, 1)          # first half of each block
    sign2 = np.where(shifts % 2 == 1, -1, 1)
    for s in range(nsb):
        out[s, 32:48] = qh[16 * s:16 * s + 16]
        if not max_scale[s] > 0:
            continue
        with np.errstate(all="ignore"):
            d = F32(max_scale[s] / F32(15))
            idd = F32(F32(1) / d)
            l = np.clip(c.nearest_int(F32(0.5) * (idd * scales[s] - F32(1))), 0, 7)
        sc = np.zeros(4, np.uint32)
        for ib in range(16):
            sc[ib // 4] |= int(l[ib]) << (3 * (ib % 4))
        out[s, 32:48] |= masks[shifts[16 * s:16 * s + 16]].astype(np.uint8)
        sumqx = F32(0)
        sumq2 = F32(0)
        with np.errstate(all="ignore"):
            for ib in range(16):
                b = 16 * s + ib
                mult = F32(2 * int(l[ib]) + 1)
                for k in range(2):
                    xg = X_P if (sign1[b] if k == 0 else sign2[b]) > 0 else X_M
                    lv = levels[8 * index[b, k]:8 * index[b, k] + 8]
                    for j in range(8):
                        wt = w[b, 8 * k + j]
                        q = F32(xg[lv[j]] * mult)
                        wq = wt * q
                        sumqx = F32(sumqx + wq * x[b, 8 * k + j])
                        sumq2 = F32(sumq2 + wq * q)
            if sumq2 > 0:
                d = F32(sumqx / sumq2)
            h = int(c.fp16_bits(np.array([d * F32(1.1125)], F32))[0])
        sc[0] |= (h & 0x000F) << 12
        sc[1] |= (h & 0x00F0) << 8
        sc[2] |= (h & 0x0F00) << 4
        sc[3] |= h & 0xF000
        out[s, 48:56] = sc.astype("<u2").view(np.uint8)
    return out.reshape(rows.shape[0], -1)
