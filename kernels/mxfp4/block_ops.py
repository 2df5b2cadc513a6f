"""Per-block code of MXFP4, one source for the numba CPU kernel (cpu.py) and the numba-cuda
kernel (cuda.py); reference.py says what ggml does. `thr` is exponent.thresholds()."""
from __future__ import annotations

import numpy as np

from ..shared.ops import F, jit_for, ops_for
from ..types import get_format

_jit = jit_for(__name__)
_ops = ops_for(__name__)

mul = _ops.mul
f32_bits = _ops.f32_bits
bits_f32 = _ops.bits_f32

TYPE_SIZE = get_format("MXFP4").type_size    # 17
KVALUES = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], np.float32)


@_jit
def scale_exponent(x, xo, thr):
    """(uint8_t)(floorf(log2f(amax)) - 2 + 127), 0 for an all-zero block."""
    amax = F(0)
    for j in range(32):
        a = abs(x[xo + j])
        if amax < a:
            amax = a
    if not amax > 0:
        return 0
    bits = f32_bits(amax) & 0x7FFFFFFF
    if bits >= 0x00800000:
        e = (bits >> 23) - 127
    else:                               # denormal: the position of the top set bit
        e = -150
        b = bits
        while b > 0:
            b >>= 1
            e += 1
    if bits >= thr[e + 149]:            # log2f rounded up to the next integer
        e += 1
    return (e + 125) & 0xFF


@_jit
def e8m0_half(e):
    """GGML_E8M0_TO_FP32_HALF: 2**(e - 128)."""
    return bits_f32((0x00200000 << e) if e < 2 else ((e - 1) << 23))


@_jit
def best_index(v, d):
    """The first i of least |kvalues_mxfp4[i] * d - v|."""
    best = 0
    best_err = abs(mul(KVALUES[0], d) - v)
    for i in range(1, 16):
        err = abs(mul(KVALUES[i], d) - v)
        if err < best_err:
            best = i
            best_err = err
    return best


@_jit
def mxfp4_block(x, xo, out, oo, thr):
    e = scale_exponent(x, xo, thr)
    d = e8m0_half(e)
    out[oo] = e
    for j in range(16):
        out[oo + 1 + j] = best_index(x[xo + j], d) | (best_index(x[xo + j + 16], d) << 4)
