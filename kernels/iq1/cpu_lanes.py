"""CPU-only IQ1_S / IQ1_M steps around the split search (cpu.py calls them; the CUDA kernel keeps
block_ops.py): the stable sort of each block and the off-grid neighbour scans, the two scalar
steps that took three quarters of the time once the split search ran across blocks.

Sort: the position of weight i in ggml's stable sort is its rank, the number of weights j that
come before it (x[j] < x[i], or x[j] == x[i] with j < i; -0.0 == 0.0 as in the comparator).
Each pair (i, j) is one float compare that ranks one of the two, run across the batch's blocks
as lanes (blocks transposed, (n, LANES)): a vector loop with no data-dependent branch, where
the insertion sort mispredicted on every shift. The weighted values are then scattered to
their ranks and the prefix sums run across lanes, adding in sorted order as ggml does.

Neighbour scan (ggml's iq1_find_best_neighbour2): the 24 terms w[i]*diff*diff (weight i at
level 0..2) are computed once, in ggml's operation order; a candidate's distance is the sum of
its eight terms in weight order. The lists hold each candidate's grid code (two bits per
weight), padded to a multiple of 8 with copies of the first candidate, so the scan is a vector
loop of shifts, selects and adds (int32 codes: with uint16 ones LLVM compared where it now
blends on the sign bit, 40% slower). ggml keeps
the first strict minimum below FLT_MAX: the integer minimum of the distances' float bits
mapped to an order that also holds for negative floats (a negative importance gives negative
terms), then the first candidate at that minimum; unsigned indices keep numba from emitting
negative-index selects that would leave the loop scalar.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from ..shared.cpu_bits import f32_bits
from ..shared.ops import F
from . import block_ops as bo
from .grid import KMAP_SIZE, iq1_grid_codes, iq1_tables

_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
PAD = 8                          # lists padded to a multiple of the AVX2 width
FMAX_BITS = np.int32(0x7F7FFFFF)   # float bits of FLT_MAX
LOW31 = np.int32(0x7FFFFFFF)
MAXLIST = 256                    # longest padded list (205 candidates) fits
P0, P1, P2 = (F(v) for v in bo.X_P)
M0, M1, M2 = (F(v) for v in bo.X_M)


@functools.lru_cache(maxsize=1)
def neighbour_tables():
    """(nstart, nlen, ncode, nbi): off-grid pattern u's list starts at nstart[u] and holds
    nlen[u] candidates (a multiple of PAD, padded with copies of the first: a copy never wins
    the strict `<`, so the choice is ggml's); ncode[start + j] is candidate j's grid code
    (level of weight i in bits 2i, 2i+1), nbi[start + j] its grid index."""
    _, kmap, nbr = iq1_tables()
    codes = iq1_grid_codes().astype(np.int32)
    nstart = np.zeros(KMAP_SIZE, np.int32)
    nlen = np.zeros(KMAP_SIZE, np.int32)
    ix: list[np.ndarray] = []
    pos = 0
    u_all = np.arange(KMAP_SIZE)
    levels_ok = np.all(((u_all[:, None] >> (2 * np.arange(8))) & 3) < 3, axis=1)
    for u in np.flatnonzero((kmap < 0) & levels_ok):     # patterns of levels 0..2 only
        off = -int(kmap[u]) - 1
        near = nbr[off + 1: off + 1 + int(nbr[off])].astype(np.int32)
        n = -(-len(near) // PAD) * PAD
        nstart[u] = pos
        nlen[u] = n
        ix.append(np.concatenate([near, np.full(n - len(near), near[0], np.int32)]))
        pos += n
    nbi = np.concatenate(ix)
    tables = (nstart, nlen, codes[nbi], nbi.astype(np.uint16))
    for a in tables:
        a.setflags(write=False)
    return tables


@njit(inline="always", **_JIT)
def _pick(c, i, e0, e1, e2):
    """The term of weight i at its level in grid code c: the level's two bits shifted to the
    sign bit, so each select is a blend on that bit (no compare)."""
    hi = np.int32(c << np.int32(30 - 2 * i))
    lo = np.int32(c << np.int32(31 - 2 * i))
    return e2 if hi < 0 else (e1 if lo < 0 else e0)


@njit(inline="always", **_JIT)
def _terms(scale, q0, q1, q2, xi, wi):
    """w*diff*diff of one weight at each level, as ggml computes it per candidate."""
    d0 = scale * q0 - xi
    d1 = scale * q1 - xi
    d2 = scale * q2 - xi
    return (wi * d0) * d0, (wi * d1) * d1, (wi * d2) * d2


@njit(inline="always", **_JIT)
def scan(NT, u, x, xo, W, l, wo, scale, sign, B):
    """block_ops.best_neighbour with the tables of neighbour_tables, weights W[l, wo:wo+8];
    B: int32 (MAXLIST,) scratch. -1 when no distance is below FLT_MAX."""
    nstart, nlen, ncode, nbi = NT
    q0, q1, q2 = (P0, P1, P2) if sign > 0 else (M0, M1, M2)
    e00, e01, e02 = _terms(scale, q0, q1, q2, x[xo + 0], W[l, wo + 0])
    e10, e11, e12 = _terms(scale, q0, q1, q2, x[xo + 1], W[l, wo + 1])
    e20, e21, e22 = _terms(scale, q0, q1, q2, x[xo + 2], W[l, wo + 2])
    e30, e31, e32 = _terms(scale, q0, q1, q2, x[xo + 3], W[l, wo + 3])
    e40, e41, e42 = _terms(scale, q0, q1, q2, x[xo + 4], W[l, wo + 4])
    e50, e51, e52 = _terms(scale, q0, q1, q2, x[xo + 5], W[l, wo + 5])
    e60, e61, e62 = _terms(scale, q0, q1, q2, x[xo + 6], W[l, wo + 6])
    e70, e71, e72 = _terms(scale, q0, q1, q2, x[xo + 7], W[l, wo + 7])
    s = np.uint64(nstart[u])
    n = np.uint64(nlen[u])
    bmin = FMAX_BITS
    for j in range(n):
        j = np.uint64(j)
        c = ncode[s + j]
        d2 = F(0) + _pick(c, 0, e00, e01, e02)
        d2 += _pick(c, 1, e10, e11, e12)
        d2 += _pick(c, 2, e20, e21, e22)
        d2 += _pick(c, 3, e30, e31, e32)
        d2 += _pick(c, 4, e40, e41, e42)
        d2 += _pick(c, 5, e50, e51, e52)
        d2 += _pick(c, 6, e60, e61, e62)
        d2 += _pick(c, 7, e70, e71, e72)
        b = f32_bits(d2)
        b = np.int32(b ^ ((b >> 31) & LOW31))   # negative floats: reversed, below every +x
        b = b if d2 < bo.FLT_MAX else FMAX_BITS
        B[j] = b
        bmin = b if b < bmin else bmin
    if bmin == FMAX_BITS:
        return -1
    bj = 0
    while B[bj] != bmin:
        bj += 1
    return np.int32(nbi[s + np.uint64(bj)])


@njit(inline="always", **_JIT)
def split_levels(IDX, l, n, i1, i2, flip, L):
    """block_ops.split_levels for block l (whole arrays and an index: a row view per block
    cost two atomic reference counts)."""
    for j in range(n):
        v = 0 if j < i1 else (1 if j < i2 else 2)
        L[IDX[l, j]] = 2 - v if flip else v


@njit(inline="always", **_JIT)
def load_block(x, xo, n, use_w, qw, qwo, sigma2, W, l, XT, WT):
    """block_ops.block_weights into W[l] (and WT[:, l]), the weights x into XT[:, l]."""
    for i in range(n):
        xi = x[xo + i]
        w = qw[qwo + i] * F(math.sqrt(sigma2 + xi * xi)) if use_w else xi * xi
        W[l, i] = w
        WT[i, l] = w
        XT[i, l] = xi


@njit(inline="always", **_JIT)
def place_groups(lev, kmap, NT, x, xo, W, l, L, ngroups, scale, sign0, sign1, index, B):
    """block_ops.place_groups with scan for the neighbours (same results); weights W[l]."""
    on_grid = True
    for k in range(ngroups):
        u = 0
        for j in range(8):
            u |= L[8 * k + j] << (2 * j)
        g = kmap[u]
        if g < 0:
            on_grid = False
            g = scan(NT, u, x, xo + 8 * k, W, l, 8 * k, scale, sign0 if k == 0 else sign1, B)
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
                q = bo.level_value(lev[8 * index[k] + j], sign)
                wq = W[l, 8 * k + j] * q
                sumqx += wq * x[xo + 8 * k + j]
                sumq2 += wq * q
        if sumqx > 0 and sumq2 > 0:
            scale = sumqx / sumq2
    return scale


@njit(inline="always", **_JIT)
def finish_s(lev, kmap, NT, x, xo, W, IDX, l, i1, i2, scale, shift, out, oo, ib, L, index, B,
             ires):
    """block_ops.finish_s for block l of the batch (weights W[l], sorted order IDX[l]) with
    place_groups above (same bytes)."""
    flip = scale < 0
    if flip:
        scale = -scale
        shift = -shift
    split_levels(IDX, l, 32, i1, i2, flip, L)
    scale = place_groups(lev, kmap, NT, x, xo, W, l, L, 4, scale, shift, shift, index, B)
    ires[0] = shift
    ires[1] = 1 if index[0] < 0 else 0
    h = 0
    for k in range(4):
        out[oo + 2 + 4 * ib + k] = index[k] & 255
        h |= (index[k] >> 8) << (3 * k)
    bo.put_half(out, oo + 34 + 2 * ib, h)
    return scale


@njit(inline="always", **_JIT)
def finish_m(lev, kmap, NT, x, xo, W, IDX, l, i1, i2, scale, k, out, oo, ib, L, index, B,
             ires):
    """block_ops.finish_m as finish_s (same bytes)."""
    flip = scale < 0
    if flip:
        scale = -scale
        k = 3 - k
    split_levels(IDX, l, 16, i1, i2, flip, L)
    sign0 = -1 if k >= 2 else 1
    sign1 = -1 if k % 2 == 1 else 1
    scale = place_groups(lev, kmap, NT, x, xo, W, l, L, 2, scale, sign0, sign1, index, B)
    ires[0] = k
    ires[1] = 1 if index[0] < 0 else 0
    out[oo + 2 * ib] = index[0] & 255
    out[oo + 2 * ib + 1] = index[1] & 255
    out[oo + 32 + ib] = (index[0] >> 8) | ((index[1] >> 8) << 4)
    return scale


@njit(**_JIT)
def ranks(XT, n, nl, R):
    """R[i, l] = the position of weight i of block l in the stable ascending order of
    XT[:n, l] (each pair ranks one of its two: i before j (i < j) when x[i] <= x[j])."""
    for i in range(n):
        r = R[i]
        for l in range(nl):
            r[l] = 0
    for i in range(n):
        xi = XT[i]
        ri = R[i]
        for j in range(i + 1, n):
            xj = XT[j]
            rj = R[j]
            for l in range(nl):
                c = np.int32(xi[l] <= xj[l])
                rj[l] += c
                ri[l] += np.int32(1) - c


@njit(**_JIT)
def sorted_prefix_sums(XT, WT, n, nl, halves, IDX, R, DX, DW, PX, PW):
    """block_ops.prefix_sums (halves False: PX, PW rows 0..n) or half_prefix_sums (halves
    True, n = 16: rows 17*h + j) for nl blocks as lanes: XT, WT (n, LANES) the blocks' weights
    x and importances transposed; IDX[l] gets block l's sorted order. DX, DW: (2*n, LANES)
    scratch, each half's values at their sorted positions and 0 at the other half's: adding
    that 0 where the scalar code copies the running sum is exact (a sum that starts at +0 is
    never -0)."""
    ranks(XT, n, nl, R)
    nh = 2 if halves else 1
    if halves:
        for r in range(2 * n):
            dx, dw = DX[r], DW[r]
            for l in range(nl):
                dx[l] = F(0)
                dw[l] = F(0)
    nlanes = np.uint64(DX.shape[1])
    nidx = np.uint64(IDX.shape[1])
    dxf, dwf, idf = DX.reshape(-1), DW.reshape(-1), IDX.reshape(-1)
    for i in range(n):       # flat unsigned indices: no negative-index selects (2x faster)
        ri, xi, wi = R[i], XT[i], WT[i]
        h = np.uint64(n * (i // 8) if halves else 0)
        for l in range(nl):
            l = np.uint64(l)
            r = np.uint64(ri[l])
            idf[l * nidx + r] = np.int32(i)
            q = (h + r) * nlanes + l
            dxf[q] = wi[l] * xi[l]
            dwf[q] = wi[l]
    for h in range(nh):
        p = 17 * h
        px, pw = PX[p], PW[p]
        for l in range(nl):
            px[l] = F(0)
            pw[l] = F(0)
        for j in range(n):
            a, b, c, d = PX[p + j], PX[p + j + 1], DX[n * h + j], PW[p + j]
            e, f = PW[p + j + 1], DW[n * h + j]
            for l in range(nl):
                b[l] = a[l] + c[l]
                e[l] = d[l] + f[l]
