"""numba CPU kernel for Q3_K, byte-identical to ggml (quantize_row_q3_K_ref / _impl).

A batch holds SB super-blocks as LANES = 16 * SB sub-block lanes, laid out super-block-minor:
lane ib * SB + s is sub-block ib of super-block s, and X[i, lane] its weight i. The sub-block
searches (cpu_lanes.q3_lanes: make_q3_quants; shared/qx_lanes.qx_lanes: make_qx_quants with the
imatrix) run across all lanes (SIMD across sub-blocks). Without an imatrix every later step is
SIMD across super-blocks too, which the super-block-minor order makes contiguous: the 6-bit
scales, the re-quantization against them and the packing of the levels; with an imatrix only the
search over each super-block's 16 scales (make_qx_quants) is scalar. A batch whose refinement
leaves nearest_int's exact range is redone by the scalar code (block_ops). Short batches are
padded with zero super-blocks, which are searched but never written.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_bits import nearest_int32
from ..shared.cpu_common import float_bytes, load_batch, run_in_batches
from ..shared.ops import F, clamp, fp16_bits, fp16_value, make_qx_quants, mul
from ..shared.qx_lanes import first_absmax_lanes, level, qx_lanes
from ..types import get_format
from .block_ops import QK_K, TYPE_SIZE, put_q3_scales, q3_k_block
from .cpu_lanes import q3_lanes

SB = 16                              # super-blocks per batch
LANES = 16 * SB
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _load(x, qw, use_w, nb, total, b0, n_sb, X, W, sigma2):
    """The batch's weights X, lane layout; with an imatrix also W = qw * sqrt(sigma2 + x^2),
    quantize_row_q3_K_impl's weights, sigma2 = 2 * mean(x^2) of each super-block, summed in
    element order (across super-blocks: SIMD). Returns True when a weight is NaN or Inf."""
    bad = load_batch(x, b0, n_sb, total, X)
    if not use_w:
        return bad
    load_batch(qw, b0, n_sb, nb, W)
    for s in range(SB):
        sigma2[s] = F(0)
    for ib in range(16):
        for i in range(16):
            for s in range(SB):
                sigma2[s] += mul(X[i, ib * SB + s], X[i, ib * SB + s])
    for s in range(SB):
        sigma2[s] = F(2) * sigma2[s] / F(QK_K)
    for i in range(16):
        for ib in range(16):
            for s in range(SB):
                v = X[i, ib * SB + s]
                W[i, ib * SB + s] *= F(math.sqrt(sigma2[s] + mul(v, v)))
    return bad


@njit(**_JIT)
def _ref_scales(scale, Ls, dh, dl, tmp):
    """quantize_row_q3_K_ref's scale step for the SB super-blocks at once: against each one's
    largest sub-block scale, Ls[s, ib] = l + 32 (6 bits), its fp16 d in dh[s], and
    dl[lane] = d * l for the re-quantization (an all-zero super-block: l = 0 stored, d = 0).
    tmp: float32 scratch (3, SB)."""
    amax, mx, isc = tmp[0], tmp[1], tmp[2]
    first_absmax_lanes(scale.reshape(16, SB), SB, amax, mx)     # the first largest |scale|
    for s in range(SB):
        isc[s] = F(-32) / mx[s] if mx[s] != 0 else F(0)
        dh[s] = fp16_bits(F(1) / isc[s]) if mx[s] != 0 else 0
        amax[s] = fp16_value(dh[s])      # now d
    for ib in range(16):
        for s in range(SB):
            l = ((nearest_int32(isc[s] * scale[ib * SB + s]) & 0xFF) ^ 0x80) - 0x80   # int8_t
            q = clamp(l, -32, 31) + 32 if mx[s] != 0 else 0
            Ls[s, ib] = q
            dl[ib * SB + s] = amax[s] * F(q - 32)


@njit(**_JIT)
def _requant_lanes(X, LL, dl, nl):
    """finish_q3_k's re-quantization against the stored scales, across lanes: LL[i, lane] =
    clamp(nearest_int(x / d), -4, 3) + 4 with d = dl[lane]; kept where d == 0, as ggml does.
    nearest_int32 is ggml's mantissa read in int32 IR: exact for any x / d, and SIMD. The levels
    stay float32 (small integers) so that the packing below runs at full SIMD width."""
    for i in range(X.shape[0]):
        for l in range(nl):
            d = dl[l]
            q = min(max(nearest_int32(X[i, l] / d), np.int32(-4)), np.int32(3)) + np.int32(4)
            LL[i, l] = F(q) if d != 0 else LL[i, l]


@njit(inline="always", **_JIT)
def _hi(v):
    """Bit 2 of a level 0..7, as a float."""
    return F(1) if v >= F(4) else F(0)


@njit(inline="always", **_JIT)
def _lo(v):
    """Bits 0-1 of a level 0..7, as a float."""
    return v - F(4) if v >= F(4) else v


@njit(**_JIT)
def _pack_levels(LL, T):
    """pack_q3_k's level bytes for the SB super-blocks at once: T[k, s] = byte k (0..95) of
    super-block s, as a float. Weight 16*ib + i is LL[i, ib*SB + s] (a float level 0..7); bit 2
    goes to hmask, bits 0-1 to qs. The bytes are built by Horner's rule in float arithmetic
    (exact: small integers), contiguous across s, so it is SIMD."""
    for half in range(2):    # hmask byte 16*half + m, bit b: weight 32*b + 16*half + m
        for m in range(16):
            for s in range(SB):
                o = half * SB + s
                h = _hi(LL[m, o + 14 * SB])
                for b in range(6, -1, -1):
                    h = F(2) * h + _hi(LL[m, o + 2 * b * SB])
                T[16 * half + m, s] = h
    for h in range(2):       # qs byte 32*h + 16*half + i, bits 2t: weight 128h + 32t + 16half + i
        for half in range(2):
            for i in range(16):
                for s in range(SB):
                    o = (8 * h + half) * SB + s
                    q = _lo(LL[i, o + 6 * SB])
                    for t in range(2, -1, -1):
                        q = F(4) * q + _lo(LL[i, o + 2 * t * SB])
                    T[32 + 32 * h + 16 * half + i, s] = q


@njit(**_JIT)
def _store(T, U, Ls, dh, n_sb, out, oo):
    """Write the super-blocks: level bytes from T (through U, uint8 (96, SB): converted in one
    SIMD pass), then the scales and d."""
    float_bytes(T, U)
    for s in range(n_sb):
        o = oo + s * TYPE_SIZE
        for k in range(96):
            out[o + k] = U[k, s]
        put_q3_scales(Ls[s], dh[s], out, o)


@njit(**_JIT)
def _imatrix_scales(X, W, scale, ibest, zero, LL, Ls, dh, dl, wsum, sw):
    """quantize_row_q3_K_impl between the sub-block searches and the re-quantization, for the
    SB super-blocks: make_qx_quants' levels from ibest and the sub-blocks' weight sums (SIMD
    across lanes), then per super-block its 16 scales to 6 bits by make_qx_quants weighted by
    those sums: Ls[s], dh[s] and dl as in _ref_scales. wsum: float32 (LANES,); sw: (32,)."""
    lo = F(-4)
    hi = F(3)
    for l in range(LANES):
        wsum[l] = F(0)
    for i in range(16):
        for l in range(LANES):
            wsum[l] += W[i, l]
            LL[i, l] = F(0) if zero[l] else level(ibest[l] * X[i, l], lo, hi) + F(4)
    for s in range(SB):
        for ib in range(16):
            sw[ib] = wsum[ib * SB + s]
            sw[16 + ib] = scale[ib * SB + s]
        dh[s] = fp16_bits(make_qx_quants(16, 32, sw, 16, sw, 0, Ls[s], 0))
        d = fp16_value(dh[s])
        for ib in range(16):
            dl[ib * SB + s] = d * F(Ls[s, ib] - 32)


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
        zero = np.empty(LANES, np.bool_)
        work = np.empty((7, LANES), np.float32)
        fwork = np.empty((3, 16, LANES), np.float32)
        iwork = np.empty((2, LANES), np.int32)
        dl = np.empty(LANES, np.float32)
        dh = np.empty(SB, np.int64)
        Ls = np.empty((SB, 16), np.int32)
        T = np.empty((96, SB), np.float32)
        U = np.empty((96, SB), np.uint8)
        sw = np.empty(32, np.float32)
        L = np.empty(QK_K, np.int32)
        for t in range(wk * n_batches // nwork, (wk + 1) * n_batches // nwork):
            b0 = t * SB
            n_sb = min(total, b0 + SB) - b0
            bad[t] = _load(x, qw, use_w, nb, total, b0, n_sb, X, W, work[0, :SB])
            if use_w:
                qx_lanes(X, W, 4, LANES, scale, ibest, zero, work)
                _imatrix_scales(X, W, scale, ibest, zero, LL, Ls, dh, dl, work[6], sw)
            elif q3_lanes(X, 4, LANES, LL, scale, work, fwork, iwork):
                _ref_scales(scale, Ls, dh, dl, work[:3, :SB])
            else:                                # outside nearest_int's exact range: scalar
                for s in range(n_sb):
                    blk = b0 + s
                    q3_k_block(x, blk * QK_K, out, blk * TYPE_SIZE, L, Ls[0], work[0])
                continue
            _requant_lanes(X, LL, dl, LANES)
            _pack_levels(LL, T)
            _store(T, U, Ls, dh, n_sb, out, b0 * TYPE_SIZE)


@register("Q3_K", "cpu")
def q3_k_cpu(rows, imatrix=None, threads=None):
    return run_in_batches(_quantize, get_format("Q3_K"), SB, rows, imatrix, threads)
