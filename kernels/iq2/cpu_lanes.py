"""CPU-only IQ2_XXS / IQ2_XS / IQ2_S super-block code whose scale search runs the trial scales of
one group as lanes (cpu.py calls it; the CUDA kernel keeps block_ops.py).

ggml tries 13 (IQ2_XXS) or 19 (IQ2_XS, IQ2_S) inverse scales per group one after another, but
the trials are independent until the final "keep the best" comparison: the level picking of
every octet (nearest_int, clamp, pack) and the two weighted sums over the group run across all
trials at once (SIMD over lanes = trials, the same float32 operation order per lane as
block_ops.search16 / search32, so each lane's sums are bit-identical); only the off-grid
neighbour scans stay per lane, and the best-of pass is a few scalar compares. Each scan is
a vector loop over its candidates (cpu.neighbour_tables: float values, component-major, lists
padded to the vector width with copies of the first candidate; unsigned indices so numba
emits no negative-index selects that would keep it scalar), reducing to the minimum of the distances'
float bits; a short second pass finds the first candidate at that minimum, as ggml's strict
`<` keeps it. The re-pick at the final scale uses the same scan.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..shared.cpu_bits import f32_bits, nearest_int32
from ..shared.ops import F, GROUP_MAX_EPS, fp16_bits, mul, put_half, seq_sumsq
from . import block_ops as ops
from .block_ops import EPS_IQ2_S, FLT_MAX, S_SIZE, XS_SIZE, XXS_SIZE

MAXT = 24                        # lanes: 19 trials (IQ2_XS/S) or 13 (IQ2_XXS, 16 lanes used)
NQ = 32                          # level rows of F4: one per weight of the largest group
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
FMAX_BITS = np.int32(0x7F7FFFFF)   # float bits of FLT_MAX


@njit(inline="always", **_JIT)
def _scan(NT, u, xval, o, waux, scale, B):
    """block_ops.best_neighbour for point u (same products in the same order per candidate):
    distances and their minimum in one vector loop over the padded list; B: int32 scratch.
    Returns the grid index."""
    nstart, nlen, nbf, nbi = NT
    s = np.uint64(nstart[u])     # unsigned indices: no negative-index wraparound selects,
    n = np.uint64(nlen[u])       # so the loop below is plain SIMD loads
    x0, x1, x2, x3 = xval[o], xval[o + 1], xval[o + 2], xval[o + 3]
    x4, x5, x6, x7 = xval[o + 4], xval[o + 5], xval[o + 6], xval[o + 7]
    w0, w1, w2, w3 = waux[o], waux[o + 1], waux[o + 2], waux[o + 3]
    w4, w5, w6, w7 = waux[o + 4], waux[o + 5], waux[o + 6], waux[o + 7]
    bmin = FMAX_BITS
    for j in range(n):
        j = np.uint64(j)
        d = scale * nbf[s + j] - x0
        d2 = F(0) + (w0 * d) * d
        d = scale * nbf[s + n + j] - x1
        d2 += (w1 * d) * d
        d = scale * nbf[s + np.uint64(2) * n + j] - x2
        d2 += (w2 * d) * d
        d = scale * nbf[s + np.uint64(3) * n + j] - x3
        d2 += (w3 * d) * d
        d = scale * nbf[s + np.uint64(4) * n + j] - x4
        d2 += (w4 * d) * d
        d = scale * nbf[s + np.uint64(5) * n + j] - x5
        d2 += (w5 * d) * d
        d = scale * nbf[s + np.uint64(6) * n + j] - x6
        d2 += (w6 * d) * d
        d = scale * nbf[s + np.uint64(7) * n + j] - x7
        d2 += (w7 * d) * d
        # d2 >= +0 (or inf/NaN), whose float bits order like the values: ggml's "first strict
        # minimum below FLT_MAX" is the first j at the integer min of the bits clamped to
        # FLT_MAX's (all >= FLT_MAX: the first candidate, as block_ops); the min vectorises
        b = f32_bits(d2) if d2 < FLT_MAX else FMAX_BITS
        B[j] = b
        bmin = b if b < bmin else bmin
    bj = 0
    while B[bj] != bmin:
        bj += 1
    return nbi[s // np.uint64(8) + np.uint64(bj)]


@njit(**_JIT)
def search_lanes(no, ntry, NL, mx, weight, wx, waux, xval, valf, kmap, NT, F4, G, U, D):
    """The trial loop of block_ops.search16 (no = 2 octets, ntry = 9, trial scales
    (5 + 0.1*step)/mx) or search32 (no = 4, ntry = 6, mx = eff_max) with the trials as lanes.
    Returns the best lane (-1: none beat the start) and its scale; G[k, t]: the grid point of
    octet k in trial t (-1-index when the octet was off the grid). NL: lanes run, >= 2*ntry+1
    rounded up to whole AVX2 vectors (lanes past the trials are computed, never chosen)."""
    T = 2 * ntry + 1
    inv, sc, sqx, sq2, Q = F4[0], F4[1], F4[2], F4[3], F4[4:]
    for t in range(NL):
        inv[t] = (F(5) + F(t - ntry) * F(0.1)) / mx
        sc[t] = F(1) / inv[t]
        sqx[t] = F(0)
        sq2[t] = F(0)
    for i in range(8 * no):
        for t in range(T, NL):
            Q[i, t] = F(0)
    for k in range(no):
        for t in range(NL):
            U[t] = 0
        for i in range(8):
            xi = xval[8 * k + i]
            for t in range(NL):
                l = min(max(nearest_int32(F(0.5) * (inv[t] * xi - F(1))), np.int32(0)),
                        np.int32(2))
                U[t] |= l << np.int32(2 * i)
        Gk = G[k]
        for t in range(T):       # per lane: the map lookup, the scan, the eight values
            u = U[t]
            g = kmap[np.uint32(u)]    # unsigned: no negative-index select
            if g < 0:
                g = _scan(NT, u, xval, 8 * k, waux, sc[t], D)
                Gk[t] = -1 - g
            else:
                Gk[t] = g
            p = np.uint32(8 * g)
            for i in range(8):
                Q[8 * k + i, t] = valf[p + np.uint32(i)]
    for i in range(8 * no):      # the sums of all lanes, in element order, as vectors
        wxi = wx[i]
        wi = weight[i]
        q = Q[i]
        for t in range(NL):
            sqx[t] += wxi * q[t]
            sq2[t] += (wi * q[t]) * q[t]
    best = F(0)
    scale = F(0)
    tb = -1
    for t in range(T):
        if sq2[t] > 0 and sqx[t] * sqx[t] > best * sq2[t]:
            scale = sqx[t] / sq2[t]
            best = scale * sqx[t]
            tb = t
    return tb, scale


@njit(**_JIT)
def lane_levels(no, G, tb, valf, L):
    """L of the octets of trial tb (all zero when tb < 0); returns how many were off the grid."""
    n_off = 0
    for k in range(no):
        g = G[k, tb] if tb >= 0 else 0
        n_off += 1 if g < 0 else 0
        g = g if g >= 0 else -1 - g
        for i in range(8):
            L[8 * k + i] = (np.int64(valf[8 * g + i]) - 1) // 2 if tb >= 0 else 0
    return n_off


@njit(**_JIT)
def _repick(xval, o, iscale, scale, L, kmap, NT, waux, valf, D):
    """block_ops.on_grid_levels (the re-pick at the final scale) with _scan as the search."""
    u = ops.octet_levels(xval, o, iscale, L, o)
    g = kmap[u]
    if g < 0:
        g = _scan(NT, u, xval, o, waux, scale, D)
        for i in range(8):
            L[o + i] = (np.int64(valf[8 * g + i]) - 1) // 2


@njit(**_JIT)
def _weights(x, xb, n, use_w, qw, qwo, sigma2, plain, weight, waux):
    """block_ops.group_weights with the imatrix branch outside the loops (vector loops)."""
    if use_w:
        for i in range(n):
            xi = x[xb + i]
            weight[i] = qw[qwo + i] * F(math.sqrt(sigma2 + xi * xi))
    else:
        for i in range(n):
            weight[i] = plain + x[xb + i] * x[xb + i]
    for i in range(n):
        waux[i] = F(math.sqrt(weight[i]))


@njit(**_JIT)
def xxs_block(x, xo, qw, qwo, kmap, out, oo, valf, NT, weight, waux, xval, wx, L, Lq, scales,
              res, F4, G, U, D):
    """block_ops.iq2_xxs_block with search_lanes as the trial loop of search32 (same bytes)."""
    for j in range(XXS_SIZE):
        out[oo + j] = 0
    sigma2 = seq_sumsq(x, xo, 256) / F(256)
    max_scale = F(0)
    for ib in range(8):
        xb = xo + 32 * ib
        _weights(x, xb, 32, True, qw, qwo + 32 * ib, sigma2, F(0), weight, waux)
        signs = 0
        for k in range(4):
            signs |= ops.fold_signs(x, xb + 8 * k, weight, xval, 8 * k, True) << (7 * k)
        scales[ib] = F(0)
        if ops.group_max(xval, 32) < GROUP_MAX_EPS:
            continue
        scale = ops.make_qp_quants(xval, 32, 4, weight, Lq)
        eff_max = mul(scale, F(3))
        if eff_max <= 0:
            continue
        for i in range(32):
            wx[i] = weight[i] * xval[i]
        tb, s = search_lanes(4, 6, 16, eff_max, weight, wx, waux, xval, valf, kmap, NT, F4, G,
                             U, D)
        if tb >= 0:
            scale = s
            lane_levels(4, G, tb, valf, L)
        if scale > 0:        # ggml re-picks all four octets at the final scale
            iscale = F(1) / scale
            for k in range(4):
                _repick(xval, 8 * k, iscale, scale, L, kmap, NT, waux, valf, D)
            ops.level_sums(32, weight, xval, L, res)
            if res[1] > 0:
                scale = res[0] / res[1]
        if scale < 0:
            scale = -scale
            signs ^= 0x0FFFFFFF
        q = oo + 2 + 8 * ib
        for k in range(4):
            out[q + k] = kmap[ops.packed(L, 8 * k)] & 0xFF
            out[q + 4 + k] = (signs >> (8 * k)) & 0xFF
        scales[ib] = scale
        max_scale = max_scale if max_scale > scale else scale
    if max_scale == 0:
        for j in range(2, XXS_SIZE):
            out[oo + j] = 0
        return
    d = max_scale / F(31)
    put_half(out, oo, fp16_bits(d))
    iscale = F(1) / d
    for ib in range(8):
        out[oo + 2 + 8 * ib + 7] |= ops.scale_level(iscale, scales[ib]) << 4


@njit(**_JIT)
def x16_block(is_s, x, xo, use_w, qw, qwo, kmap, out, oo, valf, NT, weight, waux, xval, wx, L,
              scales, res, F4, G, U, D):
    """block_ops.iq2_16_block with search_lanes as the trial loop of search16 (same bytes)."""
    size = S_SIZE if is_s else XS_SIZE
    for j in range(size):
        out[oo + j] = 0
    sumx2 = seq_sumsq(x, xo, 256)
    sigma2 = F(2) * sumx2 / F(256) if is_s else sumx2 / F(256)
    plain = mul(F(0.25), sigma2)
    eps = EPS_IQ2_S if is_s else GROUP_MAX_EPS
    max_scale = F(0)
    for ib in range(16):
        xb = xo + 16 * ib
        _weights(x, xb, 16, use_w, qw, qwo + 16 * ib, sigma2, plain, weight, waux)
        s0 = ops.fold_signs(x, xb, weight, xval, 0, not is_s)
        s1 = ops.fold_signs(x, xb + 8, weight, xval, 8, not is_s)
        scales[ib] = F(0)
        mx = ops.group_max(xval, 16)
        if mx < eps:
            continue
        for i in range(16):
            wx[i] = weight[i] * xval[i]
        tb, scale = search_lanes(2, 9, MAXT, mx, weight, wx, waux, xval, valf, kmap, NT, F4,
                                 G, U, D)
        if tb < 0:
            scale = mx / F(5)
        if lane_levels(2, G, tb, valf, L) > 0 and scale > 0:
            iscale = F(1) / scale
            for k in range(2):
                if tb >= 0 and G[k, tb] < 0:
                    _repick(xval, 8 * k, iscale, scale, L, kmap, NT, waux, valf, D)
            ops.level_sums(16, weight, xval, L, res)
            if res[1] > 0:
                scale = res[0] / res[1]
        scale = ops.pack_group(is_s, L, kmap, s0, s1, scale, out, oo, ib)
        scales[ib] = scale
        max_scale = max_scale if max_scale > scale else scale
    ops.finish_superblock(is_s, out, oo, scales, max_scale)
