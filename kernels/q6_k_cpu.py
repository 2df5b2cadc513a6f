"""numba CPU kernel for Q6_K, byte-identical to ggml (quantize_row_q6_K_ref / _impl).

The expensive part, make_qx_quants over the 16 sub-blocks of every super-block (19 trial scales),
runs LANES sub-blocks side by side (qx_lanes.py, SIMD across sub-blocks); the per-super-block
finish (int8 scales, fp16 d, re-quantization, packing) is the shared scalar code of q6_k_ops.
prange hands each thread a run of super-blocks; results do not depend on the thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_common import flat, set_threads, weights_or_dummy
from .ops import F, GROUP_MAX_EPS, clamp, fp16_bits, fp16_value, nearest_int, put_half
from .q6_k_ops import TYPE_SIZE, pack_q6_k
from .qx_lanes import qx_lanes
from .registry import register

SB_PER_BATCH = 8                     # super-blocks searched together: 128 sub-block lanes
LANES = 16 * SB_PER_BATCH
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _finish(x, xo, scales, ibest, zero, L, out, oo):
    """quantize_row_q6_K_ref after the sub-block searches, for one super-block."""
    max_scale = F(0)
    max_abs = F(0)
    for ib in range(16):
        s = scales[ib]
        if abs(s) > max_abs:
            max_abs = abs(s)
            max_scale = s
    if max_abs < GROUP_MAX_EPS:
        for k in range(TYPE_SIZE):
            out[oo + k] = 0
        return
    iscale = F(-128) / max_scale
    dh = fp16_bits(F(1) / iscale)
    put_half(out, oo + 208, dh)
    dv = fp16_value(dh)
    for ib in range(16):
        sc = min(127, nearest_int(iscale * scales[ib]))
        out[oo + 192 + ib] = sc & 0xFF
        d = dv * F(((sc & 0xFF) ^ 0x80) - 0x80)
        if d != 0:
            for ii in range(16):
                k = 16 * ib + ii
                L[k] = clamp(nearest_int(x[xo + k] / d), -32, 31) + 32
        elif zero[ib]:
            for ii in range(16):
                L[16 * ib + ii] = 0
        else:                                   # keep make_qx_quants' L
            for ii in range(16):
                k = 16 * ib + ii
                L[k] = 32 + clamp(nearest_int(ibest[ib] * x[xo + k]), -32, 31)
    pack_q6_k(L, out, oo)


@njit(parallel=True, **_JIT)
def _quantize(x, n_per_row, qw, use_w, out):
    nb = n_per_row // 256
    total = x.size // 256
    n_batches = (total + SB_PER_BATCH - 1) // SB_PER_BATCH
    for t in prange(n_batches):
        X = np.empty((16, LANES), np.float32)
        W = np.empty((16, LANES), np.float32)
        scale = np.empty(LANES, np.float32)
        ibest = np.empty(LANES, np.float32)
        zero = np.empty(LANES, np.bool_)
        work = np.empty((6, LANES), np.float32)
        L = np.empty(256, np.int32)
        b0 = t * SB_PER_BATCH
        n_sb = min(total, b0 + SB_PER_BATCH) - b0
        for s in range(n_sb):                    # transpose: X[i, lane] = x of sub-block lane
            base = (b0 + s) * 256
            wbase = ((b0 + s) % nb) * 256
            for ib in range(16):
                lane = 16 * s + ib
                for i in range(16):
                    v = x[base + 16 * ib + i]
                    X[i, lane] = v
                    W[i, lane] = qw[wbase + 16 * ib + i] if use_w else v * v
        qx_lanes(X, W, 32, 16 * n_sb, scale, ibest, zero, work)
        for s in range(n_sb):
            blk = b0 + s
            _finish(x, blk * 256, scale[16 * s:16 * s + 16], ibest[16 * s:16 * s + 16],
                    zero[16 * s:16 * s + 16], L, out, blk * TYPE_SIZE)


@register("Q6_K", "cpu")
def q6_k_cpu(rows, imatrix=None, threads=None):
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    out = np.empty(n_rows * (n_per_row // 256) * TYPE_SIZE, np.uint8)
    _quantize(flat(rows), n_per_row, weights_or_dummy(imatrix), imatrix is not None, out)
    return out.reshape(n_rows, -1)
