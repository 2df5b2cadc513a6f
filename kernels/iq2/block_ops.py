"""Per-super-block code of IQ2_XXS, IQ2_XS and IQ2_S (quantize_row_iq2_*_impl of ggml-quants.c),
one source for the numba CPU kernels (cpu.py, as cached njit) and the numba-cuda kernels
(cuda.py, loaded as device functions by shared/cuda_common.load_cuda_twin). reference.py says
what ggml does; the rules of shared/ops.py apply (float32, ggml's summation order, `mul` for
every product that feeds an addition or a comparison).

Tables (grid.py) come in as arguments, not globals: kmap alone is 170 KB, over CUDA's constant
memory. Scratch arrays come from the caller: weight, waux, xval (32 floats), L, Laux (32 ints),
Lq (32 uint8), scales (16 floats), res (4 floats), on (4 ints), d2 (MAX_LIST floats).
"""
from __future__ import annotations

import math

import numpy as np

from ..shared.ops import F, GROUP_MAX_EPS, jit_for, ops_for

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin
if __name__.endswith("_cuda"):
    from ..shared.cuda_common import load_cuda_twin
    _sb = load_cuda_twin("k_scale_min.superblock_ops")
else:
    from ..k_scale_min import superblock_ops as _sb

mul = _ops.mul
nearest_int = _ops.nearest_int
fp16_bits = _ops.fp16_bits
put_half = _ops.put_half
seq_sumsq = _ops.seq_sumsq
clamp = _ops.clamp
make_qp_quants = _sb.make_qp_quants

FLT_MAX = F(3.4028234663852886e38)
EPS_IQ2_S = F(1e-8)              # GROUP_MAX_EPS_IQ2_S
XXS_SIZE, XS_SIZE, S_SIZE = 66, 74, 82
MAX_LIST = 320                   # >= the longest neighbour list of the three grids (292)


@_jit
def best_neighbour(nbrs, slab, off, xval, xo, waux, scale, L, lo, d2):
    """iq2_find_best_neighbour: the listed grid point nearest to xval/scale in waux-weighted
    distance (first of equals); its levels go to L[lo:lo+8]. Returns its grid index. The
    distances of the whole list are summed a coordinate at a time into d2 (each one in ggml's
    order, so the same floats; the inner loop runs across the list: SIMD on the CPU)."""
    n = np.int64(nbrs[off])
    base = 8 * (off + 1)
    for j in range(n):
        d2[j] = F(0)
    for i in range(8):
        xi = xval[xo + i]
        wi = waux[xo + i]
        b = base + i * n
        for j in range(n):
            diff = mul(scale, slab[b + j]) - xi
            d2[j] += mul(mul(wi, diff), diff)
    best_d2 = FLT_MAX
    jb = 0
    for j in range(n):
        if d2[j] < best_d2:
            best_d2 = d2[j]
            jb = j
    for i in range(8):
        L[lo + i] = (np.int64(slab[base + i * n + jb]) - 1) // 2
    return np.int64(nbrs[off + 1 + jb])


@_jit
def octet_levels(xval, xo, iscale, L, lo):
    """Levels clamp(nearest_int(0.5*(iscale*x - 1)), 0, 2) of one octet into L; returns u."""
    u = 0
    for i in range(8):
        l = clamp(nearest_int(mul(F(0.5), mul(iscale, xval[xo + i]) - F(1))), 0, 2)
        L[lo + i] = l
        u |= l << (2 * i)
    return u


@_jit
def packed(L, lo):
    u = 0
    for i in range(8):
        u |= L[lo + i] << (2 * i)
    return u


@_jit
def on_grid_levels(xval, xo, iscale, scale, L, lo, kmap, nbrs, slab, waux, d2):
    """octet_levels, moved to the best listed neighbour when off the grid; returns grid index."""
    u = octet_levels(xval, xo, iscale, L, lo)
    gi = kmap[u]
    if gi < 0:
        gi = best_neighbour(nbrs, slab, -gi - 1, xval, xo, waux, scale, L, lo, d2)
    return gi


@_jit
def level_sums(n, weight, xval, L, res):
    """res[0] = sum w*x*q, res[1] = sum w*q*q with q = 2*L + 1, in element order."""
    sumqx = F(0)
    sumq2 = F(0)
    for i in range(n):
        q = F(2 * L[i] + 1)
        sumqx += mul(mul(weight[i], xval[i]), q)
        sumq2 += mul(mul(weight[i], q), q)
    res[0] = sumqx
    res[1] = sumq2


@_jit
def fold_signs(x, xo, weight, xval, vo, parity):
    """xval[vo:vo+8] = |x| and the octet's sign bits. parity (IQ2_XXS/XS): an odd number of
    negatives flips back the weight with the least w*x*x, and only 7 bits are kept."""
    s = 0
    nflip = 0
    for i in range(8):
        v = x[xo + i]
        if v >= 0:
            xval[vo + i] = v
        else:
            xval[vo + i] = -v
            nflip += 1
            s |= 1 << i
    if not parity:
        return s
    if nflip % 2:
        imin = 0
        mn = mul(mul(weight[vo], x[xo]), x[xo])
        for i in range(1, 8):
            ax = mul(mul(weight[vo + i], x[xo + i]), x[xo + i])
            if ax < mn:
                mn = ax
                imin = i
        xval[vo + imin] = -xval[vo + imin]
        s ^= 1 << imin
    return s & 127


@_jit
def group_max(xval, n):
    mx = xval[0]
    for i in range(1, n):
        mx = mx if mx > xval[i] else xval[i]
    return mx


@_jit
def trial_iscale(step, mx):
    return (F(5) + mul(F(step), F(0.1))) / mx          # (2*kMaxQ - 1 + is*0.1f) / max


@_jit
def search16(mx, weight, waux, xval, L, Laux, on, res, kmap, nbrs, slab, d2):
    """The scale search of IQ2_XS / IQ2_S for one 16-weight group (two octets); L gets the
    levels (all on the grid). Returns the scale."""
    for i in range(16):
        L[i] = 0
    best = F(0)
    scale = mx / F(5)
    on[0] = 1
    on[1] = 1
    for step in range(-9, 10):
        iscale = trial_iscale(step, mx)
        this_scale = F(1) / iscale
        for k in range(2):
            u = octet_levels(xval, 8 * k, iscale, Laux, 8 * k)
            on[2 + k] = 1 if kmap[u] >= 0 else 0
            if kmap[u] < 0:
                best_neighbour(nbrs, slab, -kmap[u] - 1, xval, 8 * k, waux, this_scale, Laux,
                               8 * k, d2)
        level_sums(16, weight, xval, Laux, res)
        if res[1] > 0 and mul(res[0], res[0]) > mul(best, res[1]):
            scale = res[0] / res[1]
            best = mul(scale, res[0])
            for i in range(16):
                L[i] = Laux[i]
            on[0] = on[2]
            on[1] = on[3]
    if (on[0] == 0 or on[1] == 0) and scale > 0:
        iscale = F(1) / scale
        for k in range(2):
            if on[k] == 0:
                on_grid_levels(xval, 8 * k, iscale, scale, L, 8 * k, kmap, nbrs, slab, waux, d2)
        level_sums(16, weight, xval, L, res)
        if res[1] > 0:
            scale = res[0] / res[1]
    return scale


@_jit
def search32(weight, waux, xval, L, Laux, Lq, res, kmap, nbrs, slab, d2):
    """The scale search of IQ2_XXS for one 32-weight group (four octets); L gets the levels.
    Returns the scale; res[2] = 1 when the group is dropped (make_qp_quants found no scale)."""
    res[2] = F(0)
    scale = make_qp_quants(xval, 32, 4, weight, Lq)
    eff_max = mul(scale, F(3))
    if eff_max <= 0:
        res[2] = F(1)
        return F(0)
    best = F(0)
    for step in range(-6, 7):
        iscale = trial_iscale(step, eff_max)
        this_scale = F(1) / iscale
        for k in range(4):
            on_grid_levels(xval, 8 * k, iscale, this_scale, Laux, 8 * k, kmap, nbrs, slab, waux,
                               d2)
        level_sums(32, weight, xval, Laux, res)
        if res[1] > 0 and mul(res[0], res[0]) > mul(best, res[1]):
            scale = res[0] / res[1]
            best = mul(scale, res[0])
            for i in range(32):
                L[i] = Laux[i]
    if scale > 0:
        iscale = F(1) / scale
        for k in range(4):
            on_grid_levels(xval, 8 * k, iscale, scale, L, 8 * k, kmap, nbrs, slab, waux, d2)
        level_sums(32, weight, xval, L, res)
        if res[1] > 0:
            scale = res[0] / res[1]
    return scale


@_jit
def group_weights(x, xo, n, use_w, qw, qwo, sigma2, plain_sigma, weight, waux):
    """qw * sqrt(sigma2 + x*x) with an imatrix, else plain_sigma + x*x; waux = sqrt(weight)."""
    for i in range(n):
        xi = x[xo + i]
        if use_w:
            weight[i] = qw[qwo + i] * F(math.sqrt(sigma2 + mul(xi, xi)))
        else:
            weight[i] = plain_sigma + mul(xi, xi)
        waux[i] = F(math.sqrt(weight[i]))


@_jit
def scale_level(iscale, s):
    return clamp(nearest_int(mul(F(0.5), mul(iscale, s) - F(1))), 0, 15)


@_jit
def iq2_xxs_block(x, xo, qw, qwo, kmap, nbrs, slab, out, oo,
                  weight, waux, xval, L, Laux, Lq, scales, res, d2):
    """One IQ2_XXS super-block {fp16 d; uint32 q2[16]}: per 32-weight group, q2[2g] = four grid
    indices (a byte each), q2[2g+1] = four 7-bit sign groups | 4-bit scale << 28."""
    for j in range(XXS_SIZE):
        out[oo + j] = 0
    sigma2 = seq_sumsq(x, xo, 256) / F(256)
    max_scale = F(0)
    for ib in range(8):
        xb = xo + 32 * ib
        group_weights(x, xb, 32, True, qw, qwo + 32 * ib, sigma2, F(0), weight, waux)
        signs = 0
        for k in range(4):
            signs |= fold_signs(x, xb + 8 * k, weight, xval, 8 * k, True) << (7 * k)
        scales[ib] = F(0)
        if group_max(xval, 32) < GROUP_MAX_EPS:
            continue
        scale = search32(weight, waux, xval, L, Laux, Lq, res, kmap, nbrs, slab, d2)
        if res[2] != 0:
            continue
        if scale < 0:
            scale = -scale
            signs ^= 0x0FFFFFFF
        q = oo + 2 + 8 * ib
        for k in range(4):
            out[q + k] = kmap[packed(L, 8 * k)] & 0xFF
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
        out[oo + 2 + 8 * ib + 7] |= scale_level(iscale, scales[ib]) << 4


@_jit
def pack_group(is_s, L, kmap, s0, s1, scale, out, oo, ib):
    """Write 16-weight group ib's two grid indices and sign bytes (levels L, sign bytes s0/s1)
    into the IQ2_XS / IQ2_S super-block at out[oo:]; a negative scale flips the signs instead.
    Returns the group's scale, now >= 0."""
    if scale < 0:
        scale = -scale
        s0 ^= 0xFF if is_s else 0x7F
        s1 ^= 0xFF if is_s else 0x7F
    for k in range(2):
        gi = kmap[packed(L, 8 * k)]
        i8 = 2 * ib + k
        if is_s:
            out[oo + 2 + i8] = gi & 0xFF
            out[oo + 66 + i8 // 4] |= (gi >> 8) << (2 * (i8 % 4))
            out[oo + 34 + i8] = s0 if k == 0 else s1
        else:
            v = gi | ((s0 if k == 0 else s1) << 9)
            out[oo + 2 + 2 * i8] = v & 0xFF
            out[oo + 3 + 2 * i8] = (v >> 8) & 0xFF
    return scale


@_jit
def finish_superblock(is_s, out, oo, scales, max_scale):
    """The super-block scale d and each group's 4-bit scale, from the groups' own scales."""
    if max_scale == 0:
        if not is_s:         # IQ2_XS clears its quants; IQ2_S keeps what it wrote, d = 0
            for j in range(2, 66):
                out[oo + j] = 0
        return
    d = max_scale / F(31)
    put_half(out, oo, fp16_bits(mul(d, F(0.9875)) if is_s else d))
    iscale = F(1) / d
    so = oo + 74 if is_s else oo + 66
    for ib in range(16):
        l = scale_level(iscale, scales[ib])
        if ib % 2 == 0:
            out[so + ib // 2] = l
        else:
            out[so + ib // 2] |= l << 4


@_jit
def iq2_16_block(is_s, x, xo, use_w, qw, qwo, kmap, nbrs, slab, out, oo,
                 weight, waux, xval, L, Laux, on, scales, res, d2):
    """One IQ2_XS super-block {fp16 d; uint16 qs[32] = grid index | signs << 9; uint8 scales[8]}
    (is_s False) or IQ2_S {fp16 d; uint8 qs[32] grid index low bytes, signs[32]; qh[8] high
    bits; scales[8]} (is_s True), from 16 groups of 16 weights."""
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
        group_weights(x, xb, 16, use_w, qw, qwo + 16 * ib, sigma2, plain, weight, waux)
        s0 = fold_signs(x, xb, weight, xval, 0, not is_s)
        s1 = fold_signs(x, xb + 8, weight, xval, 8, not is_s)
        scales[ib] = F(0)
        mx = group_max(xval, 16)
        if mx < eps:
            continue
        scale = search16(mx, weight, waux, xval, L, Laux, on, res, kmap, nbrs, slab, d2)
        scale = pack_group(is_s, L, kmap, s0, s1, scale, out, oo, ib)
        scales[ib] = scale
        max_scale = max_scale if max_scale > scale else scale
    finish_superblock(is_s, out, oo, scales, max_scale)
