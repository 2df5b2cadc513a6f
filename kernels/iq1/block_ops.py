"""Per-block code of IQ1_S and IQ1_M, one source for the numba CPU kernels (cpu.py: all but the
split search, which runs there across many blocks at once) and the numba-cuda kernels (cuda.py,
loaded as device functions by shared/cuda_common.load_cuda_twin); the super-block steps are in
superblock_ops.py. What ggml does is spelled out
in reference.py; the byte-identity rules are in shared/ops.py. Arrays are 1-D with offsets.

Grid tables (grid.iq1_tables) come in as arguments: lev (levels 0..2 at 8*g + i), kmap, nbr.
"""
from __future__ import annotations

import math

import numpy as np

from ..shared.ops import F, jit_for, ops_for

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin

mul = _ops.mul
put_half = _ops.put_half
seq_sumsq = _ops.seq_sumsq

S_SIZE = 50                      # block_iq1_s: fp16 d, qs[32], qh[8] (uint16)
M_SIZE = 56                      # block_iq1_m: qs[32], qh[16], scales[8]
EPS_S = np.float32(1e-12)        # GROUP_MAX_EPS_IQ1_S
EPS_M = np.float32(1e-7)         # GROUP_MAX_EPS_IQ1_M
FLT_MAX = np.float32(3.4028234663852886e38)
X_P = np.array([-0.875, 0.125, 1.125], np.float32)     # {-1, 0, 1} + delta
X_M = np.array([-1.125, -0.125, 0.875], np.float32)    # {-1, 0, 1} - delta
MASKS = np.array([0x00, 0x80, 0x08, 0x88], np.int32)   # IQ1_M sign bits per sign pair


@_jit
def level_value(lv, sign):
    """x_p[lv] (sign > 0) or x_m[lv]."""
    return X_P[lv] if sign > 0 else X_M[lv]


@_jit
def sigma2_of(x, xo):
    """2 * sum(x*x) / 256 over the super-block, summed in element order."""
    return (F(2) * seq_sumsq(x, xo, 256)) / F(256)


@_jit
def block_weights(x, xo, n, use_w, qw, qwo, sigma2, w):
    for i in range(n):
        xi = x[xo + i]
        w[i] = qw[qwo + i] * F(math.sqrt(sigma2 + mul(xi, xi))) if use_w else mul(xi, xi)


@_jit
def absmax(x, xo, n):
    m = abs(x[xo])
    for i in range(1, n):
        a = abs(x[xo + i])
        m = a if a > m else m
    return m


@_jit
def sort_order(x, xo, n, idx):
    """idx = the stable ascending order of x[xo:xo+n] (glibc's qsort is a stable merge sort;
    -0.0 and 0.0 compare equal and keep their order)."""
    for j in range(n):
        idx[j] = j
    for j in range(1, n):
        key = idx[j]
        v = x[xo + key]
        k = j - 1
        while k >= 0 and x[xo + idx[k]] > v:
            idx[k + 1] = idx[k]
            k -= 1
        idx[k + 1] = key


@_jit
def prefix_sums(x, xo, w, idx, n, sx, sw):
    """Running sums of w*x and of w in sorted order: sx[j] over the j smallest (sx[0] = 0)."""
    sx[0] = F(0)
    sw[0] = F(0)
    for j in range(n):
        i = idx[j]
        sx[j + 1] = sx[j] + mul(w[i], x[xo + i])
        sw[j + 1] = sw[j] + w[i]


@_jit
def half_prefix_sums(x, xo, w, idx, px, pw):
    """IQ1_M: prefix sums kept apart per half block: px[17*h + j] (h = 0: weights 0..7)."""
    px[0] = F(0)
    px[17] = F(0)
    pw[0] = F(0)
    pw[17] = F(0)
    for j in range(16):
        i = idx[j]
        h = 0 if i < 8 else 17
        o = 17 - h
        px[h + j + 1] = px[h + j] + mul(w[i], x[xo + i])
        px[o + j + 1] = px[o + j]
        pw[h + j + 1] = pw[h + j] + w[i]
        pw[o + j + 1] = pw[o + j]


@_jit
def split_score(a, b, t, wa, wb, wt, v0, v1, v2, res):
    """sum q*w*x and sum q*q*w of one split in ggml's operation order."""
    res[0] = mul(a, v0) + mul(b, v1) + mul(t, v2)
    res[1] = mul(mul(wa, v0), v0) + mul(mul(wb, v1), v1) + mul(mul(wt, v2), v2)


@_jit
def search_s(sx, sw, n, res, ires):
    """IQ1_S: the best split of one block (the scalar form of cpu.search_s_lanes).
    res[0] = scale; ires = (i1, i2, shift), i1 = -1 when nothing scored."""
    best = -FLT_MAX
    scale = F(0)
    ires[0] = -1
    ires[1] = -1
    ires[2] = 0
    for i1 in range(n + 1):
        for i2 in range(i1, n + 1):
            a = sx[i1] - sx[0]
            b = sx[i2] - sx[i1]
            t = sx[n] - sx[i2]
            wa = sw[i1] - sw[0]
            wb = sw[i2] - sw[i1]
            wt = sw[n] - sw[i2]
            for s in range(2):
                if s == 0:
                    split_score(a, b, t, wa, wb, wt, X_P[0], X_P[1], X_P[2], res)
                else:
                    split_score(a, b, t, wa, wb, wt, X_M[0], X_M[1], X_M[2], res)
                sumqx = res[0]
                sumq2 = res[1]
                if sumq2 > 0 and mul(sumqx, sumqx) > mul(best, sumq2):
                    scale = sumqx / sumq2
                    best = mul(scale, sumqx)
                    ires[0] = i1
                    ires[1] = i2
                    ires[2] = 1 if s == 0 else -1
    res[0] = scale


@_jit
def half_terms(px, pw, h, i1, i2, out):
    """IQ1_M: (qx_p, qx_m, q2_p, q2_m) of half h for split (i1, i2), in ggml's order."""
    tx = px[17 * h + 16]
    tw = pw[17 * h + 16]
    sx = px[17 * h + i1] + px[17 * h + i2]
    w1 = pw[17 * h + i1]
    w2 = pw[17 * h + i2]
    out[0] = mul(tx, X_P[2]) - sx
    out[1] = mul(tx, X_M[2]) - sx
    out[2] = (mul(mul(tw, X_P[2]), X_P[2]) + mul(w1, F(0.75))) + mul(w2, F(-1.25))
    out[3] = (mul(mul(tw, X_M[2]), X_M[2]) + mul(w1, F(1.25))) + mul(w2, F(-0.75))


@_jit
def search_m(px, pw, res, ires, t0, t1):
    """IQ1_M: the best split and sign pair k (0: ++, 1: +-, 2: -+, 3: --) of one block.
    res[0] = scale; ires = (i1, i2, k); t0, t1: 4-float scratch."""
    best = -FLT_MAX
    scale = F(0)
    ires[0] = -1
    ires[1] = -1
    ires[2] = -1
    for i1 in range(17):
        for i2 in range(i1, 17):
            half_terms(px, pw, 0, i1, i2, t0)
            half_terms(px, pw, 1, i1, i2, t1)
            for k in range(4):
                a = 0 if k < 2 else 1                # first half: x_p terms at 0/2, x_m at 1/3
                b = 0 if k % 2 == 0 else 1
                sumqx = t0[a] + t1[b]
                sumq2 = t0[2 + a] + t1[2 + b]
                if sumq2 > 0 and mul(sumqx, sumqx) > mul(best, sumq2):
                    scale = sumqx / sumq2
                    best = mul(scale, sumqx)
                    ires[0] = i1
                    ires[1] = i2
                    ires[2] = k
    res[0] = scale


@_jit
def split_levels(idx, n, i1, i2, flip, L):
    """L[i] = 0/1/2 from the split of the sorted order, 2 - L when the scale was negative."""
    for j in range(n):
        v = 0 if j < i1 else (1 if j < i2 else 2)
        L[idx[j]] = 2 - v if flip else v


@_jit
def best_neighbour(lev, kmap, nbr, u, x, xo, w, wo, scale, sign, e):
    """iq1_find_best_neighbour2: the neighbour of off-grid pattern u minimising the weighted
    squared distance sum w*(scale*q - x)**2, first on ties. Each of the 24 terms
    w[i]*diff*diff is computed once into e[3*i + level] (the same float operations as ggml's
    per-candidate loop), so a candidate costs 8 loads and adds. -1 when none is below FLT_MAX
    (ggml then scans the whole grid reading past its inputs: never reached for finite weights
    of sane size)."""
    for i in range(8):
        for lv in range(3):
            diff = mul(scale, level_value(lv, sign)) - x[xo + i]
            e[3 * i + lv] = mul(mul(w[wo + i], diff), diff)
    start = -kmap[u] - 1
    count = nbr[start]
    best = FLT_MAX
    gi = -1
    for c in range(count):
        g = np.int32(nbr[start + 1 + c])
        d2 = F(0)
        for i in range(8):
            d2 += e[3 * i + np.int32(lev[8 * g + i])]
        if d2 < best:
            best = d2
            gi = g
    return gi


@_jit
def place_groups(lev, kmap, nbr, x, xo, w, L, ngroups, scale, sign0, sign1, index, e):
    """Grid index of each group of 8 levels (a neighbour when off the grid; group 0 uses
    sign0, the others sign1) and the scale, refit over the chosen points when any group was
    off the grid. Returns the scale; -1 in index[0] when no neighbour was found."""
    on_grid = True
    for k in range(ngroups):
        u = 0
        for j in range(8):
            u |= L[8 * k + j] << (2 * j)
        g = kmap[u]
        if g < 0:
            on_grid = False
            g = best_neighbour(lev, kmap, nbr, u, x, xo + 8 * k, w, 8 * k, scale,
                               sign0 if k == 0 else sign1, e)
            if g < 0:
                index[0] = -1
                return scale
        index[k] = g
    if not on_grid:
        sumqx = F(0)
        sumq2 = F(0)
        for k in range(ngroups):
            sign = sign0 if k == 0 else sign1
            for j in range(8):
                q = level_value(lev[8 * index[k] + j], sign)
                wq = mul(w[8 * k + j], q)
                sumqx += mul(wq, x[xo + 8 * k + j])
                sumq2 += mul(wq, q)
        if sumqx > 0 and sumq2 > 0:
            scale = sumqx / sumq2
    return scale


@_jit
def finish_s(lev, kmap, nbr, x, xo, w, idx, i1, i2, scale, shift, out, oo, ib, L, index, e,
             ires):
    """IQ1_S block ib after its search: levels, grid indices, qs and qh's low 12 bits. Returns
    the block scale; ires[0] = its delta sign (1 / -1), ires[1] = 0 (1: no neighbour)."""
    flip = scale < 0
    if flip:
        scale = -scale
        shift = -shift
    split_levels(idx, 32, i1, i2, flip, L)
    scale = place_groups(lev, kmap, nbr, x, xo, w, L, 4, scale, shift, shift, index, e)
    ires[0] = shift
    ires[1] = 1 if index[0] < 0 else 0
    h = 0
    for k in range(4):
        out[oo + 2 + 4 * ib + k] = index[k] & 255
        h |= (index[k] >> 8) << (3 * k)
    put_half(out, oo + 34 + 2 * ib, h)
    return scale


@_jit
def finish_m(lev, kmap, nbr, x, xo, w, idx, i1, i2, scale, k, out, oo, ib, L, index, e, ires):
    """IQ1_M block ib after its search: levels, grid indices, qs and qh (without sign bits).
    Returns the block scale; ires[0] = its sign pair, ires[1] = 1 when no neighbour."""
    flip = scale < 0
    if flip:
        scale = -scale
        k = 3 - k
    split_levels(idx, 16, i1, i2, flip, L)
    sign0 = -1 if k >= 2 else 1
    sign1 = -1 if k % 2 == 1 else 1
    scale = place_groups(lev, kmap, nbr, x, xo, w, L, 2, scale, sign0, sign1, index, e)
    ires[0] = k
    ires[1] = 1 if index[0] < 0 else 0
    out[oo + 2 * ib] = index[0] & 255
    out[oo + 2 * ib + 1] = index[1] & 255
    out[oo + 32 + ib] = (index[0] >> 8) | ((index[1] >> 8) << 4)
    return scale
