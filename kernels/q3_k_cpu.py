"""numba CPU kernel for Q3_K, byte-identical to ggml (quantize_row_q3_K_ref / _impl).

The sub-block searches (make_q3_quants, or make_qx_quants with the imatrix) run LANES
sub-blocks side by side (qx_lanes.py, SIMD across sub-blocks); the per-super-block finish
(6-bit scales, fp16 d, re-quantization, packing) is the shared scalar code of q3_k_ops.
A super-block whose refinement leaves nearest_int's exact range is redone by the scalar code.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .cpu_common import flat, set_threads, weights_or_dummy
from .ops import F, clamp, fp16_bits, make_qx_quants, mul, nearest_int, seq_sumsq
from .q3_k_ops import TYPE_SIZE, finish_q3_k, q3_k_block
from .qx_lanes import q3_lanes, qx_lanes
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
        work = np.empty((6, LANES), np.float32)
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
            exact = q3_lanes(X, 4, 16 * n_sb, LL, scale, work)
            for s in range(n_sb):
                blk = b0 + s
                if not exact:
                    q3_k_block(x, blk * 256, out, blk * TYPE_SIZE, L, Ls, work[0])
                    continue
                for ib in range(16):
                    for i in range(16):
                        L[16 * ib + i] = LL[i, 16 * s + ib]
                dh = _ref_scales(scale[16 * s:16 * s + 16], Ls)
                finish_q3_k(x, blk * 256, L, Ls, dh, out, blk * TYPE_SIZE)


@register("Q3_K", "cpu")
def q3_k_cpu(rows, imatrix=None, threads=None):
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    out = np.empty(n_rows * (n_per_row // 256) * TYPE_SIZE, np.uint8)
    _quantize(flat(rows), n_per_row, weights_or_dummy(imatrix), imatrix is not None, out)
    return out.reshape(n_rows, -1)
