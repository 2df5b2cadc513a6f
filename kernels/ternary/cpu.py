"""numba CPU kernels for TQ1_0 and TQ2_0: SIMD across independent 256-weight blocks.

A batch holds LANES consecutive blocks as lanes (X[j, lane] = weight j of the block), so every
step of ggml's per-block code (the absmax scan, lroundf(x / d) + 1, the base-3 digits in uint8
arithmetic and the ceiling division by 243) is the same element-wise, branch-free operation
across lanes, which LLVM vectorizes; only the fp16 scale and the byte stores are per block.
prange hands each thread a run of batches; the bytes never depend on the thread count.
block_ops.py (the per-block code the CUDA kernels run) and reference.py say what ggml does.
No imatrix (ggml has none).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads
from ..shared.ops import F, fp16_bits, put_half
from ..types import get_format

LANES = 32                     # 256-weight blocks per batch (X is 32 KiB)
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
INV243 = F(1.0 / 243.0)        # exact floor for every (q * 256 + 242) / 243 with q < 256


@njit(inline="always", **_JIT)
def _trit(v):
    """lroundf(v) + 1 as ggml's int gets it on x86-64 glibc (block_ops.trit), branch-free:
    1 for inf, NaN and |v| >= 2**31."""
    a = abs(v)
    ok = a < F(2147483648.0)
    t = np.int32(a if ok else F(0))
    t = t + (np.int32(1) if a - F(t) >= F(0.5) else np.int32(0))
    t = -t if v < 0 else t
    return t + np.int32(1) if ok else np.int32(1)


@njit(inline="always", **_JIT)
def _packed(q):
    """ceil(q * 256 / 243) & 0xFF of a uint8 q, in float (exact for q < 256: checked in tests)."""
    return np.int32(F(q * np.int32(256) + np.int32(242)) * INV243) & np.int32(0xFF)


@njit(inline="always", **_JIT)
def _digits(X, inv, nl, base, stride, count, extra, P, p):
    """P[p, l] = the packed byte of `count` trits X[base + stride * n] (first most significant),
    times 3 once more when `extra` (TQ1_0's qh bytes). Inlined, so `count` is a constant: the
    short loop over n unrolls inside the loop over lanes, which vectorizes."""
    for l in range(nl):
        q = np.int32(0)
        for n in range(count):
            q = (q * np.int32(3) + _trit(X[base + stride * n, l] * inv[l])) & np.int32(0xFF)
        q = (q * np.int32(3)) & np.int32(0xFF) if extra else q
        P[p, l] = _packed(q)


@njit(parallel=True, **_JIT)
def _quantize(kind, type_size, x, out, bad):
    """kind 1: TQ1_0, 2: TQ2_0."""
    total = x.size // 256
    n_batches = (total + LANES - 1) // LANES
    n_bytes = type_size - 2
    for t in prange(n_batches):
        X = np.empty((256, LANES), np.float32)
        P = np.empty((64, LANES), np.int32)
        amax = np.empty(LANES, np.float32)
        inv = np.empty(LANES, np.float32)
        b0 = t * LANES
        nl = min(total - b0, LANES)
        flag = False
        for l in range(nl):
            for j in range(256):
                v = x[(b0 + l) * 256 + j]
                X[j, l] = v
                flag |= nonfinite(v)
        bad[t] = flag
        for l in range(nl):
            amax[l] = F(0)
        for j in range(256):
            for l in range(nl):
                a = abs(X[j, l])
                amax[l] = amax[l] if amax[l] > a else a
        for l in range(nl):
            inv[l] = F(1) / amax[l] if amax[l] != 0 else F(0)
        if kind == 1:
            for m in range(32):                 # qs[0:32]: x[m + 32n], n < 5
                _digits(X, inv, nl, m, 32, 5, False, P, m)
            for m in range(16):                 # qs[32:48]: x[160 + m + 16n]
                _digits(X, inv, nl, 160 + m, 16, 5, False, P, 32 + m)
            for j in range(4):                  # qh[j]: x[240 + j + 4m], m < 4, then * 3
                _digits(X, inv, nl, 240 + j, 4, 4, True, P, 48 + j)
        else:
            for h in range(2):
                for m in range(32):
                    for l in range(nl):
                        q = np.int32(0)
                        for n in range(4):
                            q |= (_trit(X[128 * h + m + 32 * n, l] * inv[l]) & np.int32(3)) \
                                << np.int32(2 * n)
                        P[32 * h + m, l] = q
        for l in range(nl):
            oo = (b0 + l) * type_size
            for k in range(n_bytes):
                out[oo + k] = P[k, l]
            put_half(out, oo + n_bytes, fp16_bits(amax[l]))


def _make(qtype: str, kind: int):
    fmt = get_format(qtype)

    @register(qtype, "cpu")
    def kernel(rows, imatrix=None, threads=None):
        set_threads(threads)
        n_rows, n_per_row = rows.shape
        x = flat(rows)
        out = np.empty(n_rows * (n_per_row // 256) * fmt.type_size, np.uint8)
        bad = np.zeros((x.size // 256 + LANES - 1) // LANES, np.bool_)
        _quantize(kind, fmt.type_size, x, out, bad)
        raise_on_nonfinite(rows, bad)
        return out.reshape(n_rows, -1)

    kernel.__name__ = f"{qtype.lower()}_cpu"
    return kernel


KINDS = {"TQ1_0": 1, "TQ2_0": 2}
for _name, _kind in KINDS.items():
    _make(_name, _kind)
