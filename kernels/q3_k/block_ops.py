"""Per-super-block code of Q3_K for the numba CPU and CUDA kernels (one source, see shared/ops.py).

quantize_row_q3_K_ref (make_q3_quants per sub-block, 6-bit scales against the largest) and
quantize_row_q3_K_impl (imatrix: make_qx_quants with weights qw*sqrt(2*mean(x^2) + x^2), the
scales quantized by make_qx_quants weighted by the sub-block weight sums); both re-quantize
against the rounded scales. Layout {uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; fp16 d}.
"""
from __future__ import annotations

import math

from ..shared.ops import F, jit_for, ops_for
from ..types import get_format

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin

mul = _ops.mul
clamp = _ops.clamp
nearest_int = _ops.nearest_int
fp16_bits = _ops.fp16_bits
fp16_value = _ops.fp16_value
put_half = _ops.put_half
make_qx_quants = _ops.make_qx_quants
make_q3_quants = _ops.make_q3_quants
seq_sumsq = _ops.seq_sumsq

_FMT = get_format("Q3_K")
QK_K = _FMT.block_size            # 256 weights per super-block
TYPE_SIZE = _FMT.type_size        # 110 bytes


@_jit
def finish_q3_k(x, xo, L, Ls, dh, out, oo):
    """Re-quantize against the 6-bit scales Ls (stored as l+32) and fp16 d, then pack."""
    dv = fp16_value(dh)
    for j in range(16):
        d = dv * F(Ls[j] - 32)
        if d != 0:                          # ggml keeps the searched levels where d == 0
            for ii in range(16):
                k = 16 * j + ii
                L[k] = clamp(nearest_int(x[xo + k] / d), -4, 3) + 4
    pack_q3_k(L, Ls, dh, out, oo)


@_jit
def put_q3_scales(Ls, dh, out, oo):
    """The 16 six-bit scales Ls (stored as l+32) and the fp16 d of the super-block at out[oo:]."""
    for j in range(12):
        out[oo + 96 + j] = 0
    for j in range(16):
        l = Ls[j]
        if j < 8:
            out[oo + 96 + j] = l & 0xF
        else:
            out[oo + 96 + j - 8] |= (l & 0xF) << 4
        out[oo + 96 + 8 + j % 4] |= (l >> 4) << (2 * (j // 4))
    put_half(out, oo + 108, dh)


@_jit
def pack_q3_k(L, Ls, dh, out, oo):
    """Store one super-block: final levels L (0..7, clobbered), scales Ls, fp16 d."""
    put_q3_scales(Ls, dh, out, oo)
    for m in range(32):
        hm = 0
        for b in range(8):                  # weight 32*b + m: high bit into bit b of byte m
            hi = 1 if L[32 * b + m] > 3 else 0  # branch-free: the bit is a coin flip
            hm |= hi << b
            L[32 * b + m] -= 4 * hi
        out[oo + m] = hm
    for h in range(2):
        j = 128 * h
        for l in range(32):
            out[oo + 32 + 32 * h + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) \
                | (L[j + l + 96] << 6)


@_jit
def q3_k_block(x, xo, out, oo, L, Ls, scales):
    """Reference path (no imatrix) for the 256 weights at x[xo:]."""
    max_scale = F(0)
    amax = F(0)
    for j in range(16):
        s = make_q3_quants(16, 4, x, xo + 16 * j, L, 16 * j)
        scales[j] = s
        if abs(s) > amax:
            amax = abs(s)
            max_scale = s
    if max_scale != 0:
        iscale = F(-32) / max_scale
        for j in range(16):
            l = ((nearest_int(iscale * scales[j]) & 0xFF) ^ 0x80) - 0x80     # int8_t l = ...
            Ls[j] = clamp(l, -32, 31) + 32
        dh = fp16_bits(F(1) / iscale)
    else:
        for j in range(16):
            Ls[j] = 0
        dh = 0
    finish_q3_k(x, xo, L, Ls, dh, out, oo)


@_jit
def q3_k_wblock(x, xo, qw, qwo, out, oo, L, Ls, scales, wbuf, sw):
    """imatrix path for the 256 weights at x[xo:], qw[qwo:] their importances."""
    sigma2 = F(2) * seq_sumsq(x, xo, 256) / F(256)
    for j in range(16):
        sumw = F(0)
        for l in range(16):
            v = x[xo + 16 * j + l]
            wbuf[l] = qw[qwo + 16 * j + l] * F(math.sqrt(sigma2 + mul(v, v)))
            sumw += wbuf[l]
        sw[j] = sumw
        scales[j] = make_qx_quants(16, 4, x, xo + 16 * j, wbuf, 0, L, 16 * j)
    d_block = make_qx_quants(16, 32, scales, 0, sw, 0, Ls, 0)
    finish_q3_k(x, xo, L, Ls, fp16_bits(d_block), out, oo)
