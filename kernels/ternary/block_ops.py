"""Per-block code of TQ1_0 and TQ2_0, one source for the numba CPU kernels (cpu.py) and the
numba-cuda kernels (cuda.py); reference.py says what ggml does."""
from __future__ import annotations

from ..shared.ops import F, jit_for, ops_for
from ..types import get_format

_jit = jit_for(__name__)
_ops = ops_for(__name__)

fp16_bits = _ops.fp16_bits
put_half = _ops.put_half

TQ1_SIZE = get_format("TQ1_0").type_size     # 54
TQ2_SIZE = get_format("TQ2_0").type_size     # 66


@_jit
def trit(v):
    """lroundf(v) + 1 as ggml's int gets it on x86-64 glibc: 1 for inf, NaN and huge v."""
    a = abs(v)
    if not a < F(2147483648.0):
        return 1
    t = int(a)
    if a - F(t) >= F(0.5):
        t += 1
    return (-t if v < 0 else t) + 1


@_jit
def block_scale(x, xo):
    amax = F(0)
    for j in range(256):
        a = abs(x[xo + j])
        amax = amax if amax > a else a
    return amax


@_jit
def packed(q):
    return ((q * 256 + 242) // 243) & 0xFF


@_jit
def tq1_0_block(x, xo, out, oo):
    d = block_scale(x, xo)
    inv = F(1) / d if d != 0 else F(0)
    for m in range(48):
        base = m if m < 32 else 160 + (m - 32)
        stride = 32 if m < 32 else 16
        q = 0
        for n in range(5):
            q = (q * 3 + trit(x[xo + base + stride * n] * inv)) & 0xFF
        out[oo + m] = packed(q)
    for j in range(4):
        q = 0
        for m in range(4):
            q = (q * 3 + trit(x[xo + 240 + j + 4 * m] * inv)) & 0xFF
        out[oo + 48 + j] = packed((q * 3) & 0xFF)
    put_half(out, oo + 52, fp16_bits(d))


@_jit
def tq2_0_block(x, xo, out, oo):
    d = block_scale(x, xo)
    inv = F(1) / d if d != 0 else F(0)
    for h in range(2):
        for m in range(32):
            q = 0
            for n in range(4):
                q += (trit(x[xo + 128 * h + m + 32 * n] * inv) & 3) << (2 * n)
            out[oo + 32 * h + m] = q & 0xFF
    put_half(out, oo + 64, fp16_bits(d))


@_jit
def ternary_block(kind, x, xo, out, oo):
    """kind 1: TQ1_0, 2: TQ2_0."""
    if kind == 1:
        tq1_0_block(x, xo, out, oo)
    else:
        tq2_0_block(x, xo, out, oo)
