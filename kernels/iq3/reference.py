"""Numpy reference (the spec) for IQ3_XXS and IQ3_S (ggml-quants.c quantize_row_iq3_xxs_impl,
quantize_row_iq3_s_impl; ggml_quantize_chunk takes them with or without an imatrix).

Per 256-weight super-block: sigma2 = 2*sum(x*x)/256; per 32-weight block the weights are x*x,
or qw*sqrt(sigma2 + x*x) with an imatrix, and waux = sqrt(weight). Signs are split off
(xval = |x|; IQ3_XXS keeps an even number of negatives per 8 by flipping back the weight with
the smallest w*x*x and stores 7 sign bits). A block with max xval below 1e-8 (IQ3_XXS) or 0
(IQ3_S) is skipped. The scale search tries inverse scales (15 + 0.2*is)/max, is in -15..15
(IQ3_XXS) or -9..9 (IQ3_S): each group of 4 levels nearest_int(0.5*(id*x - 1)) in 0..7 is looked
up in the grid map; a point off the grid takes its nearest listed neighbour under
sum waux*(scale*q - x)^2 (grid.py); the least-squares scale with the best sum(qx)^2/sum(q^2)
wins. Groups left off the grid are re-picked at the final scale (IQ3_S: every group) and the
scale is refit. The super-block scale d = max_scale/31 is stored as fp16(d * 1.0125) (IQ3_XXS)
or fp16(d * 1.033) (IQ3_S); block scales are 4-bit nearest_int(0.5*(s/d - 1)).
Layouts: IQ3_XXS {fp16 d; uint8 grid[64]; uint32 signs7x4 | scale << 28 [8]};
IQ3_S {fp16 d; uint8 qs[64]; uint8 qh[8]; uint8 signs[32]; uint8 scales[4]} where ggml
advances qs and signs only past blocks it did not skip (a skipped block shifts the later ones).
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from .grid import tables

SHIFT3 = 3 * np.arange(4, dtype=np.int32)


def _levels(xval, waux, inv, scale, values, kmap, padded):
    """Each group's grid point at inverse scale inv (nearest neighbour at `scale` when off the
    grid): (levels (n, 32), grid index (n, 8), on-grid flags (n, 8))."""
    n = xval.shape[0]
    with np.errstate(all="ignore"):
        lev = np.clip(c.nearest_int(F32(0.5) * (inv[:, None] * xval - F32(1))), 0, 7)
    u = (lev.reshape(n, 8, 4) << SHIFT3).sum(axis=2)
    g = kmap[u]
    on = g >= 0
    ii, kk = np.nonzero(~on)
    if ii.size:
        cand = padded[u[ii, kk]]                                   # (m, W)
        q = values[cand].astype(F32)                               # (m, W, 4)
        xv = xval.reshape(n, 8, 4)[ii, kk]
        wa = waux.reshape(n, 8, 4)[ii, kk]
        s = scale[ii]
        d2 = np.zeros(cand.shape, F32)
        with np.errstate(all="ignore"):
            for i in range(4):
                diff = s[:, None] * q[:, :, i] - xv[:, None, i]
                d2 = d2 + (wa[:, None, i] * diff) * diff
        g[ii, kk] = cand[np.arange(ii.size), np.argmin(d2, axis=1)]   # first minimum
    lev = ((values[g] - 1) // 2).reshape(n, 32)
    return lev, g, on


def _sums(weight, xval, L):
    q = (2 * L + 1).astype(F32)
    sumqx = np.zeros(L.shape[0], F32)
    sumq2 = np.zeros(L.shape[0], F32)
    for i in range(32):
        w = weight[:, i]
        sumqx = sumqx + (w * xval[:, i]) * q[:, i]
        sumq2 = sumq2 + (w * q[:, i]) * q[:, i]
    return sumqx, sumq2


def _search(weight, waux, xval, mx, is_s, tabs):
    """Scale and grid indices of the blocks that are not skipped (ggml's per-block search)."""
    values, kmap, padded = tabs
    n = xval.shape[0]
    L = np.zeros((n, 32), np.int32)
    best = np.zeros(n, F32)
    scale = (mx / F32(15)).astype(F32)
    on_grid = np.full((n, 8), not is_s)
    ntry = 9 if is_s else 15
    with np.errstate(all="ignore"):
        for itry in range(-ntry, ntry + 1):
            inv = ((F32(15) + F32(itry) * F32(0.2)) / mx).astype(F32)
            Laux, _, on_aux = _levels(xval, waux, inv, (F32(1) / inv).astype(F32), *tabs)
            sumqx, sumq2 = _sums(weight, xval, Laux)
            better = (sumq2 > 0) & (sumqx * sumqx > best * sumq2)
            scale = np.where(better, sumqx / sumq2, scale).astype(F32)
            best = np.where(better, scale * sumqx, best).astype(F32)
            L = np.where(better[:, None], Laux, L)
            on_grid = np.where(better[:, None], on_aux, on_grid)
        redo = np.flatnonzero((~on_grid).any(axis=1) & (scale > 0))
        if redo.size:
            s = scale[redo]
            lev, _, _ = _levels(xval[redo], waux[redo], (F32(1) / s).astype(F32), s, *tabs)
            if not is_s:                       # IQ3_XXS keeps the groups that were on the grid
                lev = np.where(np.repeat(on_grid[redo], 4, axis=1), L[redo], lev)
            L[redo] = lev
            sumqx, sumq2 = _sums(weight[redo], xval[redo], lev)
            scale[redo] = np.where(sumq2 > 0, sumqx / sumq2, s)
    g = kmap[(L.reshape(n, 8, 4) << SHIFT3).sum(axis=2)]
    return scale, g


def _blocks(rows, imatrix, is_s):
    """Per 32-weight block: live flag, scale, grid indices (B, 8), sign bytes (B, 4)."""
    values, kmap, _, padded = tables(512 if is_s else 256)
    x = c.f32(rows).reshape(-1, 256)
    sigma2 = (F32(2) * c.seq_sum(x * x, axis=1) / F32(256)).astype(F32)
    xb = x.reshape(-1, 32)
    nb = xb.shape[0]
    if imatrix is None:
        weight = (xb * xb).astype(F32)
    else:
        qw = np.tile(imatrix.reshape(-1, 32), (rows.shape[0], 1))
        weight = (qw * np.sqrt(np.repeat(sigma2, 8)[:, None] + xb * xb)).astype(F32)
    waux = np.sqrt(weight).astype(F32)
    neg = (xb < 0).reshape(nb, 4, 8)
    xval = np.where(xb >= 0, xb, -xb).astype(F32)
    bits = (1 << np.arange(8)).astype(np.int32)
    signs = (neg * bits).sum(axis=2).astype(np.int32)
    if not is_s:
        odd = neg.sum(axis=2) % 2 == 1
        imin = np.argmin(((weight * xb) * xb).reshape(nb, 4, 8), axis=2)
        bi, gi = np.nonzero(odd)
        col = 8 * gi + imin[bi, gi]
        xval[bi, col] = -xval[bi, col]
        signs[bi, gi] ^= bits[imin[bi, gi]]
        signs &= 127
    mx = xval.max(axis=1)
    live = mx != 0 if is_s else mx >= F32(1e-8)
    scale = np.zeros(nb, F32)
    g = np.zeros((nb, 8), np.int32)
    idx = np.flatnonzero(live)
    if idx.size:
        s, gl = _search(weight[idx], waux[idx], xval[idx], mx[idx], is_s,
                        (values.reshape(-1, 4), kmap, padded))
        neg_s = s < 0                           # never in practice: ggml flips scale and signs
        signs[idx[neg_s]] = ~signs[idx[neg_s]] & (255 if is_s else 127)
        scale[idx] = np.abs(s)
        g[idx] = gl
    return live, scale, g, signs


def _super_scales(scale, factor):
    sc = scale.reshape(-1, 8)
    max_scale = sc.max(axis=1)
    d = (max_scale / F32(31)).astype(F32)
    with np.errstate(all="ignore"):
        l = np.clip(c.nearest_int(F32(0.5) * ((F32(1) / d)[:, None] * sc - F32(1))), 0, 15)
        dh = c.fp16_bits(np.where(max_scale > 0, d * F32(factor), F32(0)).astype(F32))
    nz = max_scale > 0
    return nz, dh.view(np.uint8).reshape(-1, 2), (l * nz[:, None]).astype(np.uint32)


@register("IQ3_XXS", "reference")
def iq3_xxs(rows, imatrix=None, threads=None):
    live, scale, g, signs = _blocks(rows, imatrix, False)
    nz, dh, l = _super_scales(scale, 1.0125)
    s = signs.astype(np.uint32)
    words = (s[:, 0] | (s[:, 1] << 7) | (s[:, 2] << 14) | (s[:, 3] << 21)) * live
    words = words.reshape(-1, 8) | (l << 28)
    grid = (g * live[:, None]).astype(np.uint8).reshape(-1, 64)
    qs = np.concatenate([grid, words.astype("<u4").view(np.uint8).reshape(-1, 32)], axis=1)
    out = np.concatenate([dh, qs * nz[:, None].astype(np.uint8)], axis=1)
    return out.reshape(rows.shape[0], -1)


@register("IQ3_S", "reference")
def iq3_s(rows, imatrix=None, threads=None):
    live, scale, g, signs = _blocks(rows, imatrix, True)
    n_sb = live.size // 8
    _, dh, l = _super_scales(scale, 1.033)
    live8 = live.reshape(n_sb, 8)
    pos = np.cumsum(live8, axis=1) - live8        # blocks quantized before this one
    qs = np.zeros((n_sb, 64), np.uint8)
    sg = np.zeros((n_sb, 32), np.uint8)
    qh = np.zeros((n_sb, 8), np.uint8)
    g8 = g.reshape(n_sb, 8, 8)
    s8 = signs.reshape(n_sb, 8, 4)
    for ib in range(8):
        sb = np.flatnonzero(live8[:, ib])
        p = pos[sb, ib][:, None]
        qs[sb[:, None], 8 * p + np.arange(8)] = g8[sb, ib] & 255
        sg[sb[:, None], 4 * p + np.arange(4)] = s8[sb, ib]
        qh[sb, ib] = ((g8[sb, ib] >> 8) << np.arange(8)).sum(axis=1)
    scales = (l[:, 0::2] | (l[:, 1::2] << 4)).astype(np.uint8)
    out = np.concatenate([dh, qs, qh, sg, scales], axis=1)
    return out.reshape(rows.shape[0], -1)
