"""Per-super-block code of IQ3_XXS and IQ3_S, one source for the numba CPU kernel (cpu.py,
compiled as njit) and the numba-cuda kernel (cuda.py, loaded as device functions by
shared/cuda_common.load_cuda_twin). See reference.py for what ggml does and shared/ops.py for
the byte-identity rules (every product that feeds an addition goes through `mul`).

The grid tables (grid.py) come in as arrays: `values` (odd values of each grid point), `kmap`
and `neighbours`. Scratch arrays are the caller's: weight, waux, xval (32 floats), L, Laux
(32 ints), on_grid, on_aux (8 flags), signs (4 ints), scales (8 floats), gidx (8 ints).
"""
from __future__ import annotations

import math

from ..shared.ops import F, jit_for, ops_for
from ..types import get_format

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin

mul = _ops.mul
nearest_int = _ops.nearest_int
fp16_bits = _ops.fp16_bits
put_half = _ops.put_half
seq_sumsq = _ops.seq_sumsq
clamp = _ops.clamp

XXS_SIZE = get_format("IQ3_XXS").type_size     # 98: d, 64 grid indices, 8 scale+sign words
S_SIZE = get_format("IQ3_S").type_size         # 110: d, qs[64], qh[8], signs[32], scales[4]
FLT_MAX = F(3.4028234663852886e38)
EPS_XXS = F(1e-8)                              # GROUP_MAX_EPS_IQ3_XXS


@_jit
def best_neighbour(neighbours, off, values, xval, o, waux, scale):
    """iq3_find_best_neighbour: the listed grid point nearest to xval[o:o+4] (weights waux)."""
    n = neighbours[off]
    best_d2 = FLT_MAX
    best = neighbours[off + 1]       # ggml asserts one is found; all-inf distances keep the first
    for j in range(1, n + 1):
        g = neighbours[off + j]
        d2 = F(0)
        for i in range(4):
            diff = mul(scale, F(values[4 * g + i])) - xval[o + i]
            d2 += mul(mul(waux[o + i], diff), diff)
        if d2 < best_d2:
            best_d2 = d2
            best = g
    return best


@_jit
def group_point(xval, o, inv, L, lo):
    """The 4 levels nearest_int(0.5*(inv*x - 1)) clamped to 0..7 into L[lo:]; returns u."""
    u = 0
    for i in range(4):
        l = clamp(nearest_int(F(0.5) * (mul(inv, xval[o + i]) - F(1))), 0, 7)
        L[lo + i] = l
        u |= l << (3 * i)
    return u


@_jit
def set_levels(values, g, L, lo):
    for i in range(4):
        L[lo + i] = (values[4 * g + i] - 1) // 2


@_jit
def level_sums(weight, xval, L, res):
    sumqx = F(0)
    sumq2 = F(0)
    for i in range(32):
        w = weight[i]
        q = F(2 * L[i] + 1)
        sumqx += mul(mul(w, xval[i]), q)
        sumq2 += mul(mul(w, q), q)
    res[0] = sumqx
    res[1] = sumq2


@_jit
def block_signs(x, xo, is_s, weight, xval, signs):
    """xval = |x| and the sign bits per 8 weights; IQ3_XXS keeps an even number of flips by
    flipping back the weight with the smallest w*x*x, and stores 7 bits."""
    for k in range(4):
        nflip = 0
        s = 0
        for i in range(8):
            v = x[xo + 8 * k + i]
            if v >= 0:
                xval[8 * k + i] = v
            else:
                xval[8 * k + i] = -v
                nflip += 1
                s |= 1 << i
        if not is_s and nflip % 2 == 1:
            imin = 0
            mn = weight[8 * k] * x[xo + 8 * k] * x[xo + 8 * k]
            for i in range(1, 8):
                ax = weight[8 * k + i] * x[xo + 8 * k + i] * x[xo + 8 * k + i]
                if ax < mn:
                    mn = ax
                    imin = i
            xval[8 * k + imin] = -xval[8 * k + imin]
            s ^= 1 << imin
        signs[k] = s if is_s else s & 127


@_jit
def block_search(is_s, weight, waux, xval, L, Laux, on_grid, on_aux, values, kmap, neighbours,
                 res, mx):
    """The scale search of one 32-weight block with max |x| = mx > 0: L gets the levels of the
    chosen grid points; returns the scale (ggml's quantize_row_iq3_{xxs,s}_impl inner loop)."""
    for i in range(32):
        L[i] = 0
    best = F(0)
    scale = mx / F(15)
    for k in range(8):
        on_grid[k] = not is_s
    ntry = 9 if is_s else 15
    for itry in range(-ntry, ntry + 1):
        inv = (F(15) + mul(F(itry), F(0.2))) / mx
        this_scale = F(1) / inv
        for k in range(8):
            u = group_point(xval, 4 * k, inv, Laux, 4 * k)
            g = kmap[u]
            on_aux[k] = g >= 0
            if g < 0:
                g = best_neighbour(neighbours, -g - 1, values, xval, 4 * k, waux, this_scale)
                set_levels(values, g, Laux, 4 * k)
        level_sums(weight, xval, Laux, res)
        if res[1] > 0 and mul(res[0], res[0]) > mul(best, res[1]):
            scale = res[0] / res[1]
            best = mul(scale, res[0])
            for i in range(32):
                L[i] = Laux[i]
            for k in range(8):
                on_grid[k] = on_aux[k]
    n_off = 0
    for k in range(8):
        if not on_grid[k]:
            n_off += 1
    if n_off > 0 and scale > 0:
        inv = F(1) / scale
        for k in range(8):
            if on_grid[k] and not is_s:       # IQ3_S re-picks every group (ggml's comment-out)
                continue
            u = group_point(xval, 4 * k, inv, L, 4 * k)
            g = kmap[u]
            if g < 0:
                g = best_neighbour(neighbours, -g - 1, values, xval, 4 * k, waux, scale)
            set_levels(values, g, L, 4 * k)
        level_sums(weight, xval, L, res)
        if res[1] > 0:
            scale = res[0] / res[1]
    return scale


@_jit
def pack_block(is_s, L, kmap, signs, out, oo, ib, done):
    """Write 32-weight block ib's grid indices and signs (levels L) into the super-block at
    out[oo:]; returns the count of IQ3_S blocks written (ggml advances past written ones only)."""
    for k in range(8):
        u = 0
        for i in range(4):
            u |= L[4 * k + i] << (3 * i)
        g = kmap[u]
        if is_s:
            out[oo + 2 + 8 * done + k] = g & 255
            out[oo + 66 + ib] |= (g >> 8) << k
        else:
            out[oo + 2 + 8 * ib + k] = g
    if is_s:
        for k in range(4):
            out[oo + 74 + 4 * done + k] = signs[k]
        done += 1
    else:
        word = signs[0] | (signs[1] << 7) | (signs[2] << 14) | (signs[3] << 21)
        for k in range(4):
            out[oo + 66 + 4 * ib + k] = (word >> (8 * k)) & 255
    return done


@_jit
def finish_superblock(is_s, out, oo, size, scales, max_scale):
    """The super-block scale d and each block's 4-bit scale, from the blocks' own scales."""
    if max_scale == 0:
        if not is_s:         # IQ3_XXS clears its quants; IQ3_S keeps what it wrote, d = 0
            for b in range(size):
                out[oo + b] = 0
        return
    d = max_scale / F(31)
    put_half(out, oo, fp16_bits(d * (F(1.033) if is_s else F(1.0125))))
    inv = F(1) / d
    for ib in range(8):
        l = clamp(nearest_int(F(0.5) * (mul(inv, scales[ib]) - F(1))), 0, 15)
        if is_s:
            out[oo + 106 + ib // 2] |= l << (4 * (ib % 2))
        else:
            out[oo + 66 + 4 * ib + 3] |= l << 4


@_jit
def iq3_superblock(x, xo, use_w, qw, qwo, out, oo, is_s, values, kmap, neighbours,
                   weight, waux, xval, L, Laux, on_grid, on_aux, signs, scales, res):
    """One 256-weight super-block as IQ3_S (is_s) or IQ3_XXS at out[oo:]."""
    size = S_SIZE if is_s else XXS_SIZE
    for b in range(size):
        out[oo + b] = 0
    sigma2 = F(2) * seq_sumsq(x, xo, 256) / F(256)
    max_scale = F(0)
    done = 0                 # IQ3_S: ggml advances qs/signs only past blocks it quantized
    for ib in range(8):
        bo = xo + 32 * ib
        for i in range(32):
            xi = x[bo + i]
            if use_w:
                weight[i] = qw[qwo + 32 * ib + i] * F(math.sqrt(sigma2 + mul(xi, xi)))
            else:
                weight[i] = xi * xi
            waux[i] = F(math.sqrt(weight[i]))
        block_signs(x, bo, is_s, weight, xval, signs)
        mx = xval[0]
        for i in range(1, 32):
            mx = mx if mx > xval[i] else xval[i]
        if (is_s and mx == 0) or (not is_s and mx < EPS_XXS):
            scales[ib] = F(0)
            continue
        scale = block_search(is_s, weight, waux, xval, L, Laux, on_grid, on_aux, values, kmap,
                             neighbours, res, mx)
        if scale < 0:        # never in practice; ggml flips the scale and the signs
            scale = -scale
            for k in range(4):
                signs[k] = (~signs[k]) & (255 if is_s else 127)
        done = pack_block(is_s, L, kmap, signs, out, oo, ib, done)
        scales[ib] = scale
        max_scale = max_scale if max_scale > scale else scale
    finish_superblock(is_s, out, oo, size, scales, max_scale)
