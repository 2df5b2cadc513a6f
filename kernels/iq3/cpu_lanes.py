"""CPU-only IQ3_XXS / IQ3_S super-block code whose scale search runs the trial scales of one
32-weight block as lanes (cpu.py calls it; the CUDA kernel keeps block_ops.py).

ggml tries 2*ntry+1 inverse scales per block one after another, but the trials are
independent until the final "keep the best" comparison: the level picking of every group of
four (nearest_int, clamp, pack) and the two weighted sums over 32 weights run across all
trials at once (SIMD over lanes = trials, in the same float32 operation order per lane as
block_ops.block_search, so each lane's sums are bit-identical), only the off-grid neighbour
scans stay per lane, and the sequential best-of pass is a few scalar compares. Each scan is
itself a vector loop over its candidates (neighbour_tables: float values, component-major,
lists padded to the vector width, unsigned indices so numba emits no negative-index selects
that would keep it scalar), reducing to the minimum of the distances' float bits; a short
second pass finds the first candidate at that minimum, as ggml's strict `<` keeps it.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..shared.cpu_bits import f32_bits, nearest_int32
from ..shared.ops import F, seq_sumsq
from .block_ops import (EPS_XXS, FLT_MAX, S_SIZE, XXS_SIZE, block_signs, finish_superblock,
                        group_point, level_sums, pack_block)

MAXT = 32                        # lanes: 2*15+1 trials for IQ3_XXS, 2*9+1 for IQ3_S
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
FMAX_BITS = np.int32(0x7F7FFFFF)   # float bits of FLT_MAX
PAD = 8                          # neighbour lists padded to a multiple of the AVX2 width


def neighbour_tables(values, kmap, neighbours):
    """CPU layout of ggml's neighbour lists: for an off-grid point u (kmap[u] < 0) its list
    starts at nstart[u] and holds nlen[u] candidates, a multiple of PAD, padded with copies of
    the first (a copy never wins the scan's strict `<`, so the choice is ggml's). nbf holds
    the candidates' float values component-major (value i of candidate j at start + i*nlen +
    j, so the four distance terms are contiguous vector loads); nbi[start // 4 + j] is the
    grid index of candidate j."""
    v4 = values.reshape(-1, 4).astype(np.float32)
    nstart = np.zeros(4096, np.int32)
    nlen = np.zeros(4096, np.int32)
    fl: list[np.ndarray] = []
    il: list[np.ndarray] = []
    pos = 0
    for u in np.flatnonzero(kmap < 0):
        off = -kmap[u] - 1
        near = neighbours[off + 1: off + 1 + neighbours[off]]
        n = -(-len(near) // PAD) * PAD
        near = np.concatenate([near, np.full(n - len(near), near[0], np.int32)])
        nstart[u] = pos
        nlen[u] = n
        fl.append(v4[near].T.reshape(-1))
        il.append(near)
        pos += 4 * n
    return nstart, nlen, np.concatenate(fl), np.concatenate(il).astype(np.int32)


@njit(inline="always", **_JIT)
def _scan(NT, u, xval, o, waux, scale, B):
    """block_ops.best_neighbour for point u (same products in the same order per candidate):
    distances and their minimum in one vector loop over the padded list; B: int32 scratch."""
    nstart, nlen, nbf, nbi = NT
    s = nstart[u]
    n = nlen[u]
    x0, x1, x2, x3 = xval[o], xval[o + 1], xval[o + 2], xval[o + 3]
    w0, w1, w2, w3 = waux[o], waux[o + 1], waux[o + 2], waux[o + 3]
    s = np.uint64(s)         # unsigned indices: no negative-index wraparound selects, so
    n = np.uint64(n)         # the loop below is plain SIMD loads
    s1 = s + n
    s2 = s1 + n
    s3 = s2 + n
    bmin = FMAX_BITS
    for j in range(n):
        j = np.uint64(j)
        d = scale * nbf[s + j] - x0
        d2 = F(0) + (w0 * d) * d
        d = scale * nbf[s1 + j] - x1
        d2 += (w1 * d) * d
        d = scale * nbf[s2 + j] - x2
        d2 += (w2 * d) * d
        d = scale * nbf[s3 + j] - x3
        d2 += (w3 * d) * d
        # d2 >= +0 (or inf/NaN), whose float bits order like the values: ggml's "first
        # strict minimum below FLT_MAX" is the first j at the integer min of the bits clamped
        # to FLT_MAX's (all >= FLT_MAX: the first candidate, as in ggml); the min vectorises
        b = f32_bits(d2) if d2 < FLT_MAX else FMAX_BITS
        B[j] = b
        bmin = b if b < bmin else bmin
    bj = 0
    while B[bj] != bmin:
        bj += 1
    return nbi[s // np.uint64(4) + np.uint64(bj)]


@njit(**_JIT)
def search_lanes(is_s, weight, waux, xval, wx, L, valf, kmap, NT, mx, F4, G, U, D,
                 res):
    """block_ops.block_search for one block with max |x| = mx > 0, trials as lanes; L gets the
    chosen levels, returns the scale. Scratch: F4 float32 (8, MAXT), G int32 (8, MAXT): the
    grid point of group k in trial t (-1-index when the group was off the grid), U int32
    (MAXT,), D int32 (>= the longest list), res float32 (2,). NT: neighbour_tables."""
    ntry = 9 if is_s else 15
    T = 2 * ntry + 1
    inv, sc, sqx, sq2, Q = F4[0], F4[1], F4[2], F4[3], F4[4:]
    q0, q1, q2, q3 = F4[4], F4[5], F4[6], F4[7]
    # The vector loops run NL lanes, T rounded up to whole AVX2 vectors (no scalar remainder);
    # lanes from T on are spare trials, never scanned nor chosen.
    NL = 24 if is_s else MAXT
    for t in range(NL):
        inv[t] = (F(15) + F(t - ntry) * F(0.2)) / mx
        sc[t] = F(1) / inv[t]
        sqx[t] = F(0)
        sq2[t] = F(0)
    for i in range(4):
        for t in range(T, NL):
            Q[i, t] = F(0)
    for k in range(8):
        for t in range(NL):
            U[t] = 0
        for i in range(4):
            xi = xval[4 * k + i]
            for t in range(NL):
                l = min(max(nearest_int32(F(0.5) * (inv[t] * xi - F(1))), np.int32(0)),
                        np.int32(7))
                U[t] |= l << np.int32(3 * i)
        Gk = G[k]
        for t in range(T):       # per lane: the map lookup, the scan, the four values
            u = U[t]
            g = kmap[np.uint32(u)]    # unsigned: no negative-index select
            if g < 0:
                g = _scan(NT, u, xval, 4 * k, waux, sc[t], D)
                Gk[t] = -1 - g
            else:
                Gk[t] = g
            p = np.uint32(4 * g)
            q0[t] = valf[p]
            q1[t] = valf[p + np.uint32(1)]
            q2[t] = valf[p + np.uint32(2)]
            q3[t] = valf[p + np.uint32(3)]
        for i in range(4):       # and the sums of all lanes again as vectors
            wxi = wx[4 * k + i]
            wi = weight[4 * k + i]
            q = Q[i]
            for t in range(NL):
                sqx[t] += wxi * q[t]
                sq2[t] += (wi * q[t]) * q[t]
    best = F(0)
    scale = mx / F(15)
    tb = -1
    for t in range(T):
        if sq2[t] > 0 and sqx[t] * sqx[t] > best * sq2[t]:
            scale = sqx[t] / sq2[t]
            best = scale * sqx[t]
            tb = t
    n_off = 0
    for k in range(8):
        if tb < 0:
            n_off += 1 if is_s else 0
            for i in range(4):
                L[4 * k + i] = 0
            continue
        g = G[k, tb]
        n_off += 1 if g < 0 else 0
        g = g if g >= 0 else -1 - g
        for i in range(4):
            L[4 * k + i] = (np.int32(valf[4 * g + i]) - 1) // 2
    if n_off > 0 and scale > 0:
        inv1 = F(1) / scale
        for k in range(8):
            if not is_s and tb >= 0 and G[k, tb] >= 0:   # IQ3_S re-picks every group
                continue
            u = group_point(xval, 4 * k, inv1, L, 4 * k)
            g = kmap[u]
            if g < 0:
                g = _scan(NT, u, xval, 4 * k, waux, scale, D)
            for i in range(4):
                L[4 * k + i] = (np.int32(valf[4 * g + i]) - 1) // 2
        level_sums(weight, xval, L, res)
        if res[1] > 0:
            scale = res[0] / res[1]
    return scale


@njit(**_JIT)
def superblock(x, xo, use_w, qw, qwo, out, oo, is_s, valf, kmap, NT, weight, waux, xval, wx,
               L, signs, scales, F4, G, U, D, res):
    """block_ops.iq3_superblock with search_lanes as the scale search (same bytes)."""
    size = S_SIZE if is_s else XXS_SIZE
    for b in range(size):
        out[oo + b] = 0
    sigma2 = F(2) * seq_sumsq(x, xo, 256) / F(256)
    max_scale = F(0)
    done = 0                 # IQ3_S: ggml advances qs/signs only past blocks it quantized
    for ib in range(8):
        bo = xo + 32 * ib
        if use_w:            # branch outside the loops: each one is a vector loop (vsqrtps)
            for i in range(32):
                xi = x[bo + i]
                weight[i] = qw[qwo + 32 * ib + i] * F(math.sqrt(sigma2 + xi * xi))
        else:
            for i in range(32):
                weight[i] = x[bo + i] * x[bo + i]
        for i in range(32):
            waux[i] = F(math.sqrt(weight[i]))
        block_signs(x, bo, is_s, weight, xval, signs)
        mx = xval[0]
        for i in range(1, 32):
            mx = mx if mx > xval[i] else xval[i]
        if (is_s and mx == 0) or (not is_s and mx < EPS_XXS):
            scales[ib] = F(0)
            continue
        for i in range(32):
            wx[i] = weight[i] * xval[i]      # the w*x of every trial's sum, computed once
        scale = search_lanes(is_s, weight, waux, xval, wx, L, valf, kmap, NT, mx, F4, G,
                             U, D, res)
        if scale < 0:        # never in practice; ggml flips the scale and the signs
            scale = -scale
            for k in range(4):
                signs[k] = (~signs[k]) & (255 if is_s else 127)
        done = pack_block(is_s, L, kmap, signs, out, oo, ib, done)
        scales[ib] = scale
        max_scale = max_scale if max_scale > scale else scale
    finish_superblock(is_s, out, oo, size, scales, max_scale)
