"""Per-super-block code of IQ1_S and IQ1_M, one source for CPU (cpu.py) and CUDA (cuda.py, as
the `*_cuda` twin): the packing of a super-block once its blocks are placed on the grid (block
scales, fp16 super-scale; IQ1_M's refit of it over every block), and the all-scalar super-block
drivers the CUDA kernels run (one thread per super-block). Rules as in block_ops.py.
"""
from __future__ import annotations

import numpy as np

from ..shared.ops import F, jit_for, ops_for

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin
if __name__.endswith("_cuda"):
    from ..shared.cuda_common import load_cuda_twin
    _b = load_cuda_twin("iq1.block_ops")
else:
    from . import block_ops as _b

mul = _ops.mul
nearest_int = _ops.nearest_int
fp16_bits = _ops.fp16_bits
put_half = _ops.put_half
S_SIZE, M_SIZE, EPS_S, EPS_M, MASKS = _b.S_SIZE, _b.M_SIZE, _b.EPS_S, _b.EPS_M, _b.MASKS
level_value = _b.level_value
sigma2_of = _b.sigma2_of
block_weights = _b.block_weights
absmax = _b.absmax
sort_order = _b.sort_order
prefix_sums = _b.prefix_sums
half_prefix_sums = _b.half_prefix_sums
search_s = _b.search_s
search_m = _b.search_m
finish_s = _b.finish_s
finish_m = _b.finish_m


@_jit
def pack_s(out, oo, scales, shifts):
    """IQ1_S super-block: fp16 d = max_scale/15 * 1.125 and each block's 3-bit scale and sign
    in qh's top nibble; nothing when every block scale is 0 (d stays 0)."""
    max_scale = F(0)
    for ib in range(8):
        max_scale = max_scale if max_scale > scales[ib] else scales[ib]
    put_half(out, oo, 0)
    if max_scale == 0:
        return
    d = max_scale / F(15)
    put_half(out, oo, fp16_bits(mul(d, F(1.125))))
    inv = F(1) / d
    for ib in range(8):
        l = nearest_int(mul(F(0.5), mul(inv, scales[ib]) - F(1)))
        l = 0 if l < 0 else (7 if l > 7 else l)
        if shifts[ib] == -1:
            l |= 8
        out[oo + 34 + 2 * ib + 1] |= (l << 4)


@_jit
def pack_m(lev, x, xo, use_w, qw, qwo, sigma2, out, oo, scales, shifts, w):
    """IQ1_M super-block: 3-bit block scales, the sign bits in qh, and the fp16 super-scale
    refit over every block (* 1.1125) in the top nibbles of the four scale words; nothing
    when every block scale is 0. w: 16-float scratch."""
    for j in range(8):
        out[oo + 48 + j] = 0
    max_scale = F(0)
    for ib in range(16):
        max_scale = max_scale if max_scale > scales[ib] else scales[ib]
    if max_scale == 0:
        return
    d = max_scale / F(15)
    inv = F(1) / d
    sumqx = F(0)
    sumq2 = F(0)
    for ib in range(16):
        l = nearest_int(mul(F(0.5), mul(inv, scales[ib]) - F(1)))
        l = 0 if l < 0 else (7 if l > 7 else l)
        so = oo + 48 + 2 * (ib // 4)
        word = (np.int32(out[so]) | (np.int32(out[so + 1]) << 8)) | (l << (3 * (ib % 4)))
        put_half(out, so, word)
        out[oo + 32 + ib] |= MASKS[shifts[ib]]
        block_weights(x, xo + 16 * ib, 16, use_w, qw, qwo + 16 * ib, sigma2, w)
        mult = F(2 * l + 1)
        qh = np.int32(out[oo + 32 + ib])
        for k in range(2):
            sign = (-1 if shifts[ib] >= 2 else 1) if k == 0 else (-1 if shifts[ib] % 2 == 1 else 1)
            g = np.int32(out[oo + 2 * ib + k]) + ((qh << (8 - 4 * k)) & 0x700)
            for j in range(8):
                q = mul(level_value(lev[8 * g + j], sign), mult)
                wq = mul(w[8 * k + j], q)
                sumqx += mul(wq, x[xo + 16 * ib + 8 * k + j])
                sumq2 += mul(wq, q)
    if sumq2 > 0:
        d = sumqx / sumq2
    h = fp16_bits(mul(d, F(1.1125)))
    for i in range(4):
        so = oo + 48 + 2 * i
        word = (np.int32(out[so]) | (np.int32(out[so + 1]) << 8)) | (((h >> (4 * i)) & 0xF) << 12)
        put_half(out, so, word)


@_jit
def iq1_s_superblock(lev, kmap, nbr, x, xo, qw, qwo, out, oo,
                     w, idx, L, index, e, sx, sw, res, ires, scales, shifts):
    """One IQ1_S super-block, every step scalar (CUDA; the rest are the caller's scratch
    arrays, see cuda.py). Returns 1 when a block found no grid neighbour, else 0."""
    sigma2 = sigma2_of(x, xo)
    for j in range(S_SIZE):
        out[oo + j] = 0
    fail = 0
    for ib in range(8):
        bo = xo + 32 * ib
        block_weights(x, bo, 32, True, qw, qwo + 32 * ib, sigma2, w)
        scales[ib] = F(0)
        shifts[ib] = 1
        if absmax(x, bo, 32) < EPS_S:
            continue
        sort_order(x, bo, 32, idx)
        prefix_sums(x, bo, w, idx, 32, sx, sw)
        search_s(sx, sw, 32, res, ires)
        if ires[0] < 0 or ires[1] < 0 or ires[2] == 0:
            continue
        s = finish_s(lev, kmap, nbr, x, bo, w, idx, ires[0], ires[1], res[0], ires[2],
                     out, oo, ib, L, index, e, ires)
        scales[ib] = s
        shifts[ib] = ires[0]
        fail |= ires[1]
    pack_s(out, oo, scales, shifts)
    return fail


@_jit
def iq1_m_superblock(lev, kmap, nbr, x, xo, use_w, qw, qwo, out, oo,
                     w, idx, L, index, e, px, pw, res, ires, scales, shifts, t0, t1):
    """One IQ1_M super-block, every step scalar (CUDA). Returns 1 when a block found no
    grid neighbour, else 0."""
    sigma2 = sigma2_of(x, xo) if use_w else F(0)
    for j in range(56):
        out[oo + j] = 0
    fail = 0
    for ib in range(16):
        bo = xo + 16 * ib
        block_weights(x, bo, 16, use_w, qw, qwo + 16 * ib, sigma2, w)
        scales[ib] = F(0)
        shifts[ib] = 0
        if absmax(x, bo, 16) < EPS_M:
            continue
        sort_order(x, bo, 16, idx)
        half_prefix_sums(x, bo, w, idx, px, pw)
        search_m(px, pw, res, ires, t0, t1)
        if ires[0] < 0 or ires[1] < 0 or ires[2] < 0:
            continue
        s = finish_m(lev, kmap, nbr, x, bo, w, idx, ires[0], ires[1], res[0], ires[2],
                     out, oo, ib, L, index, e, ires)
        scales[ib] = s
        shifts[ib] = ires[0]
        fail |= ires[1]
    pack_m(lev, x, xo, use_w, qw, qwo, sigma2, out, oo, scales, shifts, w)
    return fail
