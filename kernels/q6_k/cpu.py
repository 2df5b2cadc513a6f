"""numba CPU kernel for Q6_K, byte-identical to ggml (quantize_row_q6_K_ref / _impl).

A batch holds SB super-blocks as LANES = 16 * SB sub-block lanes, laid out super-block-minor
(as in q3_k_cpu.py): lane ib * SB + s is sub-block ib of super-block s, X[i, lane] its weight i.
The expensive part, make_qx_quants over every sub-block (19 trial scales), runs across all lanes
(shared/qx_lanes.py); the int8 scales, the re-quantization against them and the packing of the 6-bit
levels run across super-blocks, contiguous in this order, so every step is SIMD. Short batches
are padded with zero super-blocks, which are searched but never written.
prange hands each thread a run of batches; results do not depend on the thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_bits import nearest_int32
from ..shared.cpu_common import float_bytes, load_batch, run_in_batches
from ..shared.ops import F, GROUP_MAX_EPS, fp16_bits, fp16_value, put_half
from ..shared.qx_lanes import first_absmax_lanes, level, qx_lanes
from ..types import get_format
from .block_ops import QK_K, TYPE_SIZE

SB = 16                              # super-blocks per batch
LANES = 16 * SB
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _load(x, qw, use_w, nb, total, b0, n_sb, X, W):
    """The batch's weights X and search weights W (the imatrix, or x*x), lane layout.
    Returns True when a weight is NaN or Inf."""
    bad = load_batch(x, b0, n_sb, total, X)
    if use_w:
        load_batch(qw, b0, n_sb, nb, W)
    else:
        for i in range(16):
            for l in range(LANES):
                W[i, l] = X[i, l] * X[i, l]
    return bad


@njit(**_JIT)
def _scales(scale, sc, dh, dl, live, tmp):
    """quantize_row_q6_K after the sub-block searches, for the SB super-blocks at once: against
    each one's largest sub-block scale the int8 scales sc[s, ib], the fp16 d in dh[s], and
    dl[lane] = d * sc for the re-quantization (0: keep make_qx_quants' level). live[s] is False
    for an all-zero super-block (written as 210 zero bytes). tmp: float32 scratch (3, SB)."""
    amax, mx, isc = tmp[0], tmp[1], tmp[2]
    first_absmax_lanes(scale.reshape(16, SB), SB, amax, mx)     # the first largest |scale|
    for s in range(SB):
        live[s] = amax[s] >= GROUP_MAX_EPS
        isc[s] = F(-128) / mx[s] if live[s] else F(0)
        dh[s] = fp16_bits(F(1) / isc[s]) if live[s] else 0
        amax[s] = fp16_value(dh[s])      # now d
    for ib in range(16):
        for s in range(SB):
            q = min(np.int32(127), nearest_int32(isc[s] * scale[ib * SB + s]))
            sc[s, ib] = q
            dl[ib * SB + s] = amax[s] * F(((q & 0xFF) ^ 0x80) - 0x80)   # the stored int8_t


@njit(**_JIT)
def _levels(X, LL, dl, ibest, zero):
    """The final levels, across lanes: 32 + clamp(nearest_int(x / d), -32, 31) with d = dl[lane];
    where d == 0, make_qx_quants' own level from ibest (0 in a zero lane). nearest_int32 is
    ggml's mantissa read in int32 IR (exact for any x / d, and SIMD); ibest * x is within
    level()'s exact range. Stored as float32 small integers for the packing."""
    lo = np.int32(-32)
    hi = np.int32(31)
    for i in range(X.shape[0]):
        for l in range(LANES):
            d = dl[l]
            req = F(min(max(nearest_int32(X[i, l] / d), lo), hi) + np.int32(32))
            keep = F(0) if zero[l] else level(ibest[l] * X[i, l], F(-32), F(31)) + F(32)
            LL[i, l] = req if d != 0 else keep


@njit(inline="always", **_JIT)
def _hi(v):
    """Bits 4-5 of a level 0..63 (a float), as a float: v / 16 is exact, floor takes the bits."""
    return np.floor(v * F(0.0625))


@njit(**_JIT)
def _pack_levels(LL, T):
    """pack_q6_k for the SB super-blocks at once: T[k, s] = byte k (0..191) of super-block s,
    as a float. Level 128*h + 32*t + l of the super-block is LL[l % 16, ib*SB + s] with
    ib = 8*h + 2*t + l // 16. Bytes built in exact float arithmetic, contiguous across s."""
    for h in range(2):
        for half in range(2):            # l = 16*half + i
            for i in range(16):
                for s in range(SB):
                    o = (8 * h + half) * SB + s
                    q1 = LL[i, o]
                    q2 = LL[i, o + 2 * SB]
                    q3 = LL[i, o + 4 * SB]
                    q4 = LL[i, o + 6 * SB]
                    h1 = _hi(q1)
                    h2 = _hi(q2)
                    h3 = _hi(q3)
                    h4 = _hi(q4)
                    l = 16 * half + i
                    T[64 * h + l, s] = (q1 - F(16) * h1) + F(16) * (q3 - F(16) * h3)
                    T[64 * h + 32 + l, s] = (q2 - F(16) * h2) + F(16) * (q4 - F(16) * h4)
                    T[128 + 32 * h + l, s] = h1 + F(4) * h2 + F(16) * h3 + F(64) * h4


@njit(**_JIT)
def _store(T, U, sc, dh, live, n_sb, out, oo):
    """Write the super-blocks: level bytes from T (through U, uint8 (192, SB), converted in one
    SIMD pass), the int8 scales and d; an all-zero super-block as 210 zero bytes."""
    float_bytes(T, U)
    for s in range(n_sb):
        o = oo + s * TYPE_SIZE
        if not live[s]:
            for k in range(TYPE_SIZE):
                out[o + k] = 0
            continue
        for k in range(192):
            out[o + k] = U[k, s]
        for ib in range(16):
            out[o + 192 + ib] = sc[s, ib] & 0xFF
        put_half(out, o + 208, dh[s])


@njit(parallel=True, **_JIT)
def _quantize(x, n_per_row, qw, use_w, out, nthreads, bad):
    nb = n_per_row // QK_K
    total = x.size // QK_K
    n_batches = (total + SB - 1) // SB
    nwork = max(1, min(n_batches, 4 * nthreads))
    for wk in prange(nwork):                     # scratch once per work item, not per batch
        X = np.empty((16, LANES), np.float32)
        W = np.empty((16, LANES), np.float32)
        LL = np.empty((16, LANES), np.float32)
        scale = np.empty(LANES, np.float32)
        ibest = np.empty(LANES, np.float32)
        dl = np.empty(LANES, np.float32)
        zero = np.empty(LANES, np.bool_)
        work = np.empty((6, LANES), np.float32)
        sc = np.empty((SB, 16), np.int32)
        dh = np.empty(SB, np.int64)
        live = np.empty(SB, np.bool_)
        T = np.empty((192, SB), np.float32)
        U = np.empty((192, SB), np.uint8)
        for t in range(wk * n_batches // nwork, (wk + 1) * n_batches // nwork):
            b0 = t * SB
            n_sb = min(total, b0 + SB) - b0
            bad[t] = _load(x, qw, use_w, nb, total, b0, n_sb, X, W)
            qx_lanes(X, W, 32, LANES, scale, ibest, zero, work)
            _scales(scale, sc, dh, dl, live, work[:3, :SB])
            _levels(X, LL, dl, ibest, zero)
            _pack_levels(LL, T)
            _store(T, U, sc, dh, live, n_sb, out, b0 * TYPE_SIZE)


@register("Q6_K", "cpu")
def q6_k_cpu(rows, imatrix=None, threads=None):
    return run_in_batches(_quantize, get_format("Q6_K"), SB, rows, imatrix, threads)
