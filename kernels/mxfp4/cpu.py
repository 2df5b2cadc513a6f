"""numba CPU kernel for MXFP4: SIMD across independent 32-weight blocks.

A batch holds LANES consecutive blocks as lanes (X[j, lane] = weight j of the block). The
absmax, the scale exponent (binary exponent plus the log2f threshold table of exponent.py; a
denormal's exponent from the int->float conversion of its bits, no loop) and the nearest-value
search run as the same branch-free selects in every lane, which LLVM vectorizes.

The search uses the table's symmetry: kvalues_mxfp4 is {0, 1, 2, 3, 4, 6, 8, 12} then their
negatives, so |-k*d - v| == |k*d - |v|| exactly (IEEE rounding is symmetric). For v >= 0 the
first least error is among indices 0..7 (a negative value's error is k*d + v, never smaller;
equal only where index 0 already wins), for v < 0 it is index i + 8 of the first least
|k_i*d - |v||, except i == 0 (index 0 ties index 8 and comes first). NaN keeps index 0, as
ggml's strict `<`. block_ops.py (what the CUDA kernel runs) and reference.py say what ggml does.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_bits import bits_f32, f32_bits
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads
from ..shared.ops import F
from .block_ops import TYPE_SIZE
from .exponent import E_MAX, E_MIN, thresholds

LANES = 128                   # 32-weight blocks per batch
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
POSITIVE = np.array([0, 1, 2, 3, 4, 6, 8, 12], np.float32)   # kvalues_mxfp4[0:8]


@njit(inline="always", **_JIT)
def _exponent(amax, thr):
    """block_ops.scale_exponent from a block's absmax, branch-free: floor(log2f(amax)) - 2 +
    127 as uint8, 0 for an all-zero (or NaN) block."""
    bits = f32_bits(amax) & np.int32(0x7FFFFFFF)
    normal = (bits >> np.int32(23)) - np.int32(127)
    # a denormal's bits, converted to float exactly (< 2**23), carry its top bit as exponent
    sub = ((f32_bits(F(bits)) >> np.int32(23)) - np.int32(127)) - np.int32(149)
    e = normal if bits >= np.int32(0x00800000) else sub
    e = min(max(e, np.int32(E_MIN)), np.int32(E_MAX))      # inf: garbage, refused anyway
    e = e + (np.int32(1) if bits >= thr[e - E_MIN] else np.int32(0))
    return (e + np.int32(125)) & np.int32(0xFF) if amax > 0 else np.int32(0)


@njit(inline="always", **_JIT)
def _e8m0_half(e):
    """GGML_E8M0_TO_FP32_HALF: 2**(e - 128)."""
    return bits_f32((np.int32(0x00200000) << e) if e < 2 else ((e - np.int32(1)) << np.int32(23)))


@njit(inline="always", **_JIT)
def _index(v, d):
    """The first index of least |kvalues_mxfp4[i] * d - v| (module doc), as selects: the
    7-step loop unrolls and the caller's loop over lanes vectorizes."""
    a = abs(v)
    best = np.int32(0)
    berr = a                                 # index 0: |0*d - v|
    for i in range(1, 8):
        err = abs(POSITIVE[i] * d - a)
        c = err < berr
        best = np.int32(i) if c else best
        berr = err if c else berr
    return best + np.int32(8) if (v < 0) & (best > 0) else best


@njit(**_JIT)
def _search(X, d, nl, Q):
    for j in range(32):
        for l in range(nl):
            Q[j, l] = _index(X[j, l], d[l])


@njit(parallel=True, **_JIT)
def _quantize(x, out, thr, bad):
    total = x.size // 32
    n_batches = (total + LANES - 1) // LANES
    for t in prange(n_batches):
        X = np.empty((32, LANES), np.float32)
        Q = np.empty((32, LANES), np.int32)
        amax = np.empty(LANES, np.float32)
        d = np.empty(LANES, np.float32)
        E = np.empty(LANES, np.int32)
        b0 = t * LANES
        nl = min(total - b0, LANES)
        flag = False
        for j in range(32):
            for l in range(nl):
                v = x[(b0 + l) * 32 + j]
                X[j, l] = v
                flag |= nonfinite(v)
        bad[t] = flag
        for l in range(nl):
            amax[l] = F(0)
        for j in range(32):
            for l in range(nl):
                a = abs(X[j, l])
                amax[l] = a if amax[l] < a else amax[l]
        for l in range(nl):
            E[l] = _exponent(amax[l], thr)
            d[l] = _e8m0_half(E[l])
        _search(X, d, nl, Q)
        for j in range(16):                     # the nibble pairs, still across lanes
            for l in range(nl):
                Q[j, l] = Q[j, l] | (Q[j + 16, l] << np.int32(4))
        for l in range(nl):
            oo = (b0 + l) * TYPE_SIZE
            out[oo] = E[l]
            for j in range(16):
                out[oo + 1 + j] = Q[j, l]


@register("MXFP4", "cpu")
def mxfp4_cpu(rows, imatrix=None, threads=None):
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    x = flat(rows)
    out = np.empty(n_rows * (n_per_row // 32) * TYPE_SIZE, np.uint8)
    bad = np.zeros((x.size // 32 + LANES - 1) // LANES, np.bool_)
    _quantize(x, out, thresholds(), bad)
    raise_on_nonfinite(rows, bad)
    return out.reshape(n_rows, -1)
