"""numba CPU kernel for Q3_K, byte-identical to ggml (quantize_row_q3_K_ref / _impl).

The sub-block searches (make_q3_quants, or make_qx_quants with the imatrix) run LANES
sub-blocks side by side (q3_lanes.py / qx_lanes.py, SIMD across sub-blocks). Without an imatrix
the re-quantization against the stored scales runs across lanes too and only the packing is per
super-block (q3_k_ops.pack_q3_k); with one, the shared scalar finish_q3_k does both.
A super-block whose refinement leaves nearest_int's exact range is redone by the scalar code.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .cpu_common import flat, set_threads, weights_or_dummy
from .cpu_bits import nearest_int32
from .ops import F, clamp, fp16_bits, fp16_value, make_qx_quants, mul, nearest_int, seq_sumsq
from .q3_k_ops import TYPE_SIZE, finish_q3_k, pack_q3_k, q3_k_block
from .q3_lanes import q3_lanes
from .qx_lanes import qx_lanes
from .registry import register

SB_PER_BATCH = 8
LANES = 16 * SB_PER_BATCH
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _ref_scales(scales, Ls):
    """quantize_row_q3_K_ref: the 16 sub-block scales to 6 bits (l+32) and the fp16 d."""
    max_scale = F(0)
    amax = F(0)
    for j in range(16):
        if abs(scales[j]) > amax:
            amax = abs(scales[j])
            max_scale = scales[j]
    if max_scale == 0:
        for j in range(16):
            Ls[j] = 0
        return 0
    iscale = F(-32) / max_scale
    for j in range(16):
        l = ((nearest_int(iscale * scales[j]) & 0xFF) ^ 0x80) - 0x80     # int8_t l
        Ls[j] = clamp(l, -32, 31) + 32
    return fp16_bits(F(1) / iscale)


@njit(**_JIT)
def _requant_lanes(X, LL, dl, nl):
    """finish_q3_k's re-quantization against the stored scales, across lanes: LL[i, lane] =
    clamp(nearest_int(x / d), -4, 3) + 4 with d = dl[lane]; kept where d == 0, as ggml does.
    nearest_int32 is ggml's mantissa read in int32 IR: exact for any x / d, and SIMD."""
    for i in range(X.shape[0]):
        for l in range(nl):
            d = dl[l]
            q = min(max(nearest_int32(X[i, l] / d), np.int32(-4)), np.int32(3)) + np.int32(4)
            LL[i, l] = q if d != 0 else LL[i, l]


@njit(parallel=True, **_JIT)
def _quantize(x, n_per_row, qw, use_w, out):
    nb = n_per_row // 256
    total = x.size // 256
    n_batches = (total + SB_PER_BATCH - 1) // SB_PER_BATCH
    for t in prange(n_batches):
        X = np.empty((16, LANES), np.float32)
        W = np.empty((16, LANES), np.float32)
        LL = np.empty((16, LANES), np.int32)
        scale = np.empty(LANES, np.float32)
        ibest = np.empty(LANES, np.float32)
        zero = np.empty(LANES, np.bool_)
        work = np.empty((7, LANES), np.float32)
        Xc = np.empty((16, LANES), np.float32)
        Lc = np.empty((16, LANES), np.int32)
        iwork = np.empty((2, LANES), np.int32)
        dl = np.empty(LANES, np.float32)
        dhs = np.empty(SB_PER_BATCH, np.int64)
        LsA = np.empty((SB_PER_BATCH, 16), np.int32)
        sw = np.empty(16, np.float32)
        L = np.empty(256, np.int32)
        Ls = np.empty(16, np.int32)
        b0 = t * SB_PER_BATCH
        n_sb = min(total, b0 + SB_PER_BATCH) - b0
        for s in range(n_sb):                    # transpose: X[i, lane] = x of sub-block lane
            base = (b0 + s) * 256
            sigma2 = F(0)
            if use_w:
                sigma2 = F(2) * seq_sumsq(x, base, 256) / F(256)
            wbase = ((b0 + s) % nb) * 256
            for ib in range(16):
                lane = 16 * s + ib
                for i in range(16):
                    v = x[base + 16 * ib + i]
                    X[i, lane] = v
                    if use_w:
                        W[i, lane] = qw[wbase + 16 * ib + i] * F(math.sqrt(sigma2 + mul(v, v)))
        if use_w:
            qx_lanes(X, W, 4, 16 * n_sb, scale, ibest, zero, work)
            for s in range(n_sb):
                blk = b0 + s
                for ib in range(16):
                    lane = 16 * s + ib
                    sw[ib] = F(0)
                    for i in range(16):
                        sw[ib] += W[i, lane]
                        L[16 * ib + i] = 0 if zero[lane] else \
                            4 + clamp(nearest_int(ibest[lane] * X[i, lane]), -4, 3)
                d_block = make_qx_quants(16, 32, scale, 16 * s, sw, 0, Ls, 0)
                finish_q3_k(x, blk * 256, L, Ls, fp16_bits(d_block), out, blk * TYPE_SIZE)
        else:
            exact = q3_lanes(X, 4, 16 * n_sb, LL, scale, work, Xc, Lc, iwork)
            if not exact:
                for s in range(n_sb):
                    blk = b0 + s
                    q3_k_block(x, blk * 256, out, blk * TYPE_SIZE, L, Ls, work[0])
                continue
            for s in range(n_sb):
                dhs[s] = _ref_scales(scale[16 * s:16 * s + 16], LsA[s])
                dv = fp16_value(dhs[s])
                for ib in range(16):
                    dl[16 * s + ib] = dv * F(LsA[s, ib] - 32)
            _requant_lanes(X, LL, dl, 16 * n_sb)
            for s in range(n_sb):
                blk = b0 + s
                for ib in range(16):
                    for i in range(16):
                        L[16 * ib + i] = LL[i, 16 * s + ib]
                pack_q3_k(L, LsA[s], dhs[s], out, blk * TYPE_SIZE)


@register("Q3_K", "cpu")
def q3_k_cpu(rows, imatrix=None, threads=None):
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    out = np.empty(n_rows * (n_per_row // 256) * TYPE_SIZE, np.uint8)
    _quantize(flat(rows), n_per_row, weights_or_dummy(imatrix), imatrix is not None, out)
    return out.reshape(n_rows, -1)
