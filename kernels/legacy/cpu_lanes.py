"""numba CPU kernels for the legacy types, LANES blocks side by side: the reference path
(quantize_row_{q8_0,q4_0,q4_1,q5_0,q5_1}_ref: no imatrix, and Q8_0 always) and the imatrix
paths of Q4_0/Q5_0 (make_qx_quants through qx_lanes) and of Q4_1/Q5_1 (make_qkx3_quants through
shared/qkx_lanes.search_lanes, the search Q4_K/Q5_K use with an imatrix).

The blocks are transposed (X[j, lane] = weight j of block `lane`) so every step of ggml's
per-block code (the strict first-max / min / max scans, the scaling, C's float->int casts)
is an element-wise select across lanes that LLVM vectorizes; the packing stays per block.
C's casts are x86's: truncate, and INT_MIN for NaN/inf/out of range (1/d overflows to inf
for denormal blocks); the selects below reproduce that without branches.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..shared.cpu_common import nonfinite
from ..shared.ops import F, fp16_bits, nearest_int, put_half
from ..shared.qkx_lanes import search_lanes
from ..shared.qx_lanes import qx_lanes
from .block_ops import put_nibbles, put_qh

LANES = 64
INT_MIN = np.int32(-2147483648)
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(inline="always", **_JIT)
def _cvt(v):
    """(int) of a float as x86 converts it, branch-free."""
    ok = (v >= F(-2147483648.0)) & (v < F(2147483648.0))
    return np.int32(v if ok else F(0)) if ok else INT_MIN


@njit(inline="always", **_JIT)
def _cvt8(v):
    """(int8_t) of a float: the low byte of _cvt, sign-extended."""
    return ((_cvt(v) & 0xFF) ^ 0x80) - 0x80


@njit(inline="always", **_JIT)
def _roundf(v):
    """roundf (half away from zero) then the int conversion, branch-free."""
    a = abs(v)
    ok = a < F(2147483648.0)
    t = np.int32(a if ok else F(0))
    r = t + (np.int32(1) if a - F(t) >= F(0.5) else np.int32(0))
    r = -r if v < 0 else r
    return r if ok else INT_MIN


@njit(parallel=True, **_JIT)
def quantize_ref(kind, type_size, x, out, bad):
    """kind: 0 Q8_0, 1 Q4_0, 2 Q4_1, 3 Q5_0, 4 Q5_1 (as block_ops.legacy_block)."""
    total = x.size // 32
    n_batches = (total + LANES - 1) // LANES
    for t in prange(n_batches):
        X = np.empty((32, LANES), np.float32)
        Q = np.empty((32, LANES), np.int32)
        lo = np.empty(LANES, np.float32)
        hi = np.empty(LANES, np.float32)
        d = np.empty(LANES, np.float32)
        inv = np.empty(LANES, np.float32)
        b0 = t * LANES
        nl = min(total - b0, LANES)
        flag = False
        for l in range(nl):
            for j in range(32):
                v = x[(b0 + l) * 32 + j]
                X[j, l] = v
                flag |= nonfinite(v)
        bad[t] = flag
        if kind == 2 or kind == 4:               # min / max scans from the first weight
            nmax = 15 if kind == 2 else 31
            for l in range(nl):
                lo[l] = X[0, l]
                hi[l] = X[0, l]
            for j in range(1, 32):
                for l in range(nl):
                    v = X[j, l]
                    lo[l] = v if v < lo[l] else lo[l]
                    hi[l] = v if v > hi[l] else hi[l]
            for l in range(nl):
                d[l] = (hi[l] - lo[l]) / F(nmax)
                inv[l] = F(1) / d[l] if d[l] != 0 else F(0)
            for j in range(32):
                for l in range(nl):
                    q = (X[j, l] - lo[l]) * inv[l] + F(0.5)
                    Q[j, l] = min(15, _cvt8(q)) if kind == 2 else _cvt(q) & 0xFF
        else:                                    # first value of largest magnitude
            for l in range(nl):
                lo[l] = F(0)                     # amax
                hi[l] = F(0)                     # its signed value
            for j in range(32):
                for l in range(nl):
                    v = X[j, l]
                    c = lo[l] < abs(v)
                    hi[l] = v if c else hi[l]
                    lo[l] = abs(v) if c else lo[l]
            for l in range(nl):
                if kind == 0:
                    d[l] = lo[l] / F(127)
                elif kind == 1:
                    d[l] = hi[l] / F(-8)
                else:
                    d[l] = hi[l] / F(-16)
                inv[l] = F(1) / d[l] if d[l] != 0 else F(0)
            for j in range(32):
                for l in range(nl):
                    v = X[j, l] * inv[l]
                    if kind == 0:
                        Q[j, l] = _roundf(v) & 0xFF
                    elif kind == 1:
                        Q[j, l] = min(15, _cvt8(v + F(8.5)))
                    else:
                        Q[j, l] = min(31, _cvt8(v + F(16.5)))
        for l in range(nl):                      # pack block b0 + l
            oo = (b0 + l) * type_size
            put_half(out, oo, fp16_bits(d[l]))
            if kind == 0:
                for j in range(32):
                    out[oo + 2 + j] = Q[j, l]
                continue
            q0 = oo + 2
            if kind == 2 or kind == 4:
                put_half(out, oo + 2, fp16_bits(lo[l]))
                q0 = oo + 4
            if kind >= 3:
                qh = 0
                for j in range(32):
                    qh |= ((Q[j, l] >> 4) & 1) << j
                for k in range(4):
                    out[q0 + k] = (qh >> (8 * k)) & 0xFF
                q0 += 4
            for j in range(16):
                out[q0 + j] = (Q[j, l] & 0xF) | ((Q[j + 16, l] & 0xF) << 4)


@njit(**_JIT)
def _load_weighted(x, qw, sig, n_per_row, b0, nl, X, W):
    """Blocks b0..b0+nl-1 transposed into X, with ggml's weights qw*sqrt(sigma2 + x*x) in W.
    Returns True when a weight is NaN or Inf."""
    nb = n_per_row // 32
    bad = False
    for l in range(nl):
        blk = b0 + l
        s2 = sig[blk // nb]
        wo = (blk % nb) * 32
        for j in range(32):
            v = x[blk * 32 + j]
            X[j, l] = v
            W[j, l] = qw[wo + j] * np.sqrt(s2 + v * v)
            bad |= nonfinite(v)
    return bad


@njit(parallel=True, **_JIT)
def quantize_weighted_qx(kind, type_size, x, n_per_row, qw, sig, out, bad):
    """quantize_row_q4_0_impl (kind 1) / quantize_row_q5_0_impl (kind 3): make_qx_quants(32,
    nmax, x, L, 1, qw*sqrt(sigma2 + x*x)) for LANES blocks side by side (qx_lanes)."""
    nmax = 8 if kind == 1 else 16
    total = x.size // 32
    n_batches = (total + LANES - 1) // LANES
    for t in prange(n_batches):
        X = np.empty((32, LANES), np.float32)
        W = np.empty((32, LANES), np.float32)
        scale = np.empty(LANES, np.float32)
        ibest = np.empty(LANES, np.float32)
        zero = np.empty(LANES, np.bool_)
        work = np.empty((6, LANES), np.float32)
        L = np.empty(32, np.int32)
        b0 = t * LANES
        nl = min(total - b0, LANES)
        bad[t] = _load_weighted(x, qw, sig, n_per_row, b0, nl, X, W)
        qx_lanes(X, W, nmax, nl, scale, ibest, zero, work)
        for l in range(nl):
            oo = (b0 + l) * type_size
            put_half(out, oo, fp16_bits(scale[l]))
            for j in range(32):
                L[j] = 0 if zero[l] else \
                    nmax + min(max(nearest_int(ibest[l] * X[j, l]), -nmax), nmax - 1)
            if kind == 3:
                put_qh(L, out, oo + 2)
                put_nibbles(L, out, oo + 6)
            else:
                put_nibbles(L, out, oo + 2)


@njit(parallel=True, **_JIT)
def quantize_weighted_affine(kind, type_size, x, n_per_row, qw, sig, out, bad):
    """quantize_row_q4_1_impl (kind 2) / quantize_row_q5_1_impl (kind 4): make_qkx3_quants(32,
    nmax, x, qw*sqrt(sigma2 + x*x), L, &min, Laux, -0.9, 0.05, 36, false) for LANES blocks side
    by side; d and -min stored as fp16, the levels as found."""
    nmax = 15 if kind == 2 else 31
    total = x.size // 32
    n_batches = (total + LANES - 1) // LANES
    for t in prange(n_batches):
        X = np.empty((32, LANES), np.float32)
        W = np.empty((32, LANES), np.float32)
        LL = np.empty((32, LANES), np.int32)
        st = np.empty((16, LANES), np.float32)
        scale = np.empty(LANES, np.float32)
        the_min = np.empty(LANES, np.float32)
        L = np.empty(32, np.int32)
        b0 = t * LANES
        nl = min(total - b0, LANES)
        bad[t] = _load_weighted(x, qw, sig, n_per_row, b0, nl, X, W)
        search_lanes(X, W, LL, st, nl, nmax, -0.9, 0.05, 36, False, True, scale, the_min)
        for l in range(nl):
            oo = (b0 + l) * type_size
            put_half(out, oo, fp16_bits(scale[l]))
            put_half(out, oo + 2, fp16_bits(-the_min[l]))
            for j in range(32):
                L[j] = LL[j, l]
            if kind == 4:
                put_qh(L, out, oo + 4)
                put_nibbles(L, out, oo + 8)
            else:
                put_nibbles(L, out, oo + 4)
