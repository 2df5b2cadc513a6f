"""Per-block code of the legacy types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), one source for the numba
CPU kernels (cpu.py, cpu_lanes.py) and the numba-cuda kernels (cuda.py); see shared/ops.py for the
rules. Each function quantizes the 32 weights at x[xo:xo+32] into out[oo:oo+type_size].
The *_w variants are ggml's imatrix paths (quantize_row_*_impl); `sigma2` is the row's mean
square, `wbuf`/`L`/`Laux`/`res` are scratch of 32/32/32/1 elements owned by the caller.
"""
from __future__ import annotations

import math

from ..shared.ops import F, jit_for, ops_for

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin

mul = _ops.mul
fp16_bits = _ops.fp16_bits
f32_bits = _ops.f32_bits
bits_f32 = _ops.bits_f32
put_half = _ops.put_half
make_qx_quants = _ops.make_qx_quants
make_qkx3_quants = _ops.make_qkx3_quants


@_jit
def to_int(v):
    """C's float -> int conversion as x86 does it (cvttss2si): truncate toward zero, and
    INT_MIN for NaN, infinities and out-of-range values (1/d overflows for denormal blocks)."""
    if v >= F(-2147483648.0) and v < F(2147483648.0):
        return int(v)
    return -2147483648


@_jit
def to_int8(v):
    """(int8_t) of a float: the low byte of to_int, sign-extended."""
    return ((to_int(v) & 0xFF) ^ 0x80) - 0x80


@_jit
def roundf(v):
    """C roundf (half away from zero) of a float32, converted with to_int."""
    a = abs(v)
    if not a < F(2147483648.0):
        return -2147483648
    t = int(a)
    if a - F(t) >= F(0.5):
        t += 1
    return -t if v < 0 else t


@_jit
def absmax_bits(x, xo):
    """The IEEE bits of max |x| over the block: an integer max, which vectorizes (for floats
    without NaN the bits of |v| order like the values)."""
    m = 0
    for j in range(32):
        m = max(m, f32_bits(x[xo + j]) & 0x7FFFFFFF)
    return m


@_jit
def absmax_signed(x, xo):
    """The first value of largest magnitude (ggml starts from +0.0 and takes a strictly larger
    |v|, so an all-zero block gives +0.0)."""
    m = absmax_bits(x, xo)
    if m == 0:
        return F(0)
    for j in range(32):
        if f32_bits(x[xo + j]) & 0x7FFFFFFF == m:
            return x[xo + j]
    return F(0)


@_jit
def order_key(b):
    """int32 float bits -> an int that orders like the float value (-0.0 just below +0.0)."""
    return b ^ ((b >> 31) & 0x7FFFFFFF)


@_jit
def first_equal(x, xo, v):
    """The first element equal to v (as a value: which zero, +0.0 or -0.0, ggml's scan keeps)."""
    for j in range(32):
        if x[xo + j] == v:
            return x[xo + j]
    return v


@_jit
def put_nibbles(L, out, o):
    for j in range(16):
        out[o + j] = (L[j] & 0xF) | ((L[j + 16] & 0xF) << 4)


@_jit
def put_qh(L, out, o):
    qh = 0
    for j in range(32):
        qh |= ((L[j] >> 4) & 1) << j
    for k in range(4):
        out[o + k] = (qh >> (8 * k)) & 0xFF


@_jit
def q8_0_block(x, xo, out, oo):
    d = bits_f32(absmax_bits(x, xo)) / F(127)
    inv = F(1) / d if d != 0 else F(0)
    put_half(out, oo, fp16_bits(d))
    for j in range(32):
        out[oo + 2 + j] = roundf(x[xo + j] * inv) & 0xFF


@_jit
def q4_0_block(x, xo, out, oo, L):
    d = absmax_signed(x, xo) / F(-8)
    inv = F(1) / d if d != 0 else F(0)
    put_half(out, oo, fp16_bits(d))
    for j in range(32):
        L[j] = min(15, to_int8(mul(x[xo + j], inv) + F(8.5)))
    put_nibbles(L, out, oo + 2)


@_jit
def q5_0_block(x, xo, out, oo, L):
    d = absmax_signed(x, xo) / F(-16)
    inv = F(1) / d if d != 0 else F(0)
    put_half(out, oo, fp16_bits(d))
    for j in range(32):
        L[j] = min(31, to_int8(mul(x[xo + j], inv) + F(16.5)))
    put_qh(L, out, oo + 2)
    put_nibbles(L, out, oo + 6)


@_jit
def affine_block(x, xo, out, oo, L, nmax):
    """Q4_1 (nmax 15) / Q5_1 (nmax 31) reference path: d = (max-min)/nmax, m = min."""
    # ggml's `if (v < min) min = v; if (v > max) max = v;` scan, as integer min/max on ordered
    # bits (vectorizable) and then the first element equal to each (the sign of a zero)
    kmin = order_key(f32_bits(x[xo]))
    kmax = kmin
    for j in range(1, 32):
        k = order_key(f32_bits(x[xo + j]))
        kmin = min(kmin, k)
        kmax = max(kmax, k)
    mn = first_equal(x, xo, bits_f32(order_key(kmin)))
    mx = first_equal(x, xo, bits_f32(order_key(kmax)))
    d = (mx - mn) / F(nmax)
    inv = F(1) / d if d != 0 else F(0)
    put_half(out, oo, fp16_bits(d))
    put_half(out, oo + 2, fp16_bits(mn))
    for j in range(32):
        q = mul(x[xo + j] - mn, inv) + F(0.5)
        # Q4_1: MIN(15, (int8_t)q); Q5_1 has no clamp, just a (uint8_t) cast
        L[j] = min(15, to_int8(q)) if nmax == 15 else to_int(q) & 0xFF


@_jit
def row_weights(x, xo, qw, qwo, sigma2, wbuf):
    """qw[j] * sqrtf(sigma2 + x[j]*x[j]) for the block's 32 weights."""
    for j in range(32):
        xj = x[xo + j]
        wbuf[j] = qw[qwo + j] * F(math.sqrt(sigma2 + mul(xj, xj)))


@_jit
def q4_0_wblock(x, xo, qw, qwo, sigma2, out, oo, wbuf, L):
    row_weights(x, xo, qw, qwo, sigma2, wbuf)
    d = make_qx_quants(32, 8, x, xo, wbuf, 0, L, 0)
    put_half(out, oo, fp16_bits(d))
    put_nibbles(L, out, oo + 2)


@_jit
def q5_0_wblock(x, xo, qw, qwo, sigma2, out, oo, wbuf, L):
    row_weights(x, xo, qw, qwo, sigma2, wbuf)
    d = make_qx_quants(32, 16, x, xo, wbuf, 0, L, 0)
    put_half(out, oo, fp16_bits(d))
    put_qh(L, out, oo + 2)
    put_nibbles(L, out, oo + 6)


@_jit
def affine_wblock(x, xo, qw, qwo, sigma2, out, oo, wbuf, L, Laux, res, nmax):
    row_weights(x, xo, qw, qwo, sigma2, wbuf)
    d = make_qkx3_quants(32, nmax, x, xo, wbuf, 0, L, 0, Laux, F(-0.9), F(0.05), 36, res)
    put_half(out, oo, fp16_bits(d))
    put_half(out, oo + 2, fp16_bits(-res[0]))


@_jit
def legacy_block(kind, x, xo, use_w, qw, qwo, sigma2, out, oo, wbuf, L, Laux, res):
    """Quantize one block of type `kind` (0 Q8_0, 1 Q4_0, 2 Q4_1, 3 Q5_0, 4 Q5_1)."""
    if kind == 0:
        q8_0_block(x, xo, out, oo)
    elif kind == 1:
        if use_w:
            q4_0_wblock(x, xo, qw, qwo, sigma2, out, oo, wbuf, L)
        else:
            q4_0_block(x, xo, out, oo, L)
    elif kind == 3:
        if use_w:
            q5_0_wblock(x, xo, qw, qwo, sigma2, out, oo, wbuf, L)
        else:
            q5_0_block(x, xo, out, oo, L)
    else:
        nmax = 15 if kind == 2 else 31
        if use_w:
            affine_wblock(x, xo, qw, qwo, sigma2, out, oo, wbuf, L, Laux, res, nmax)
        else:
            affine_block(x, xo, out, oo, L, nmax)
        if kind == 2:
            put_nibbles(L, out, oo + 4)
        else:
            put_qh(L, out, oo + 4)
            put_nibbles(L, out, oo + 8)
