"""numba CPU kernel for Q6_K, byte-identical to ggml (quantize_row_q6_K_ref / _impl).

The expensive part, make_qx_quants over the 16 sub-blocks of every super-block (19 trial scales),
runs LANES sub-blocks side by side (qx_lanes.py, SIMD across sub-blocks); the int8 scales and fp16 d
are per super-block, the re-quantization against them is SIMD across sub-blocks again.
prange hands each thread a run of super-blocks; results do not depend on the thread count.
"""
from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from .cpu_common import flat, set_threads, weights_or_dummy
from .cpu_bits import nearest_int32
from .ops import F, GROUP_MAX_EPS, fp16_bits, fp16_value, nearest_int, put_half
from .q6_k_ops import TYPE_SIZE, pack_q6_k
from .qx_lanes import qx_lanes
from .registry import register

SB_PER_BATCH = 8                     # super-blocks searched together: 128 sub-block lanes
LANES = 16 * SB_PER_BATCH
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _scales(scales, out, oo, dl):
    """quantize_row_q6_K_ref after the sub-block searches, for one super-block: the int8 scales
    and fp16 d go to out; dl[ib] = d * scale[ib] (0: keep make_qx_quants' L). Returns False for
    an all-zero super-block (written as 210 zero bytes)."""
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
        return False
    iscale = F(-128) / max_scale
    dh = fp16_bits(F(1) / iscale)
    put_half(out, oo + 208, dh)
    dv = fp16_value(dh)
    for ib in range(16):
        sc = min(127, nearest_int(iscale * scales[ib]))
        out[oo + 192 + ib] = sc & 0xFF
        dl[ib] = dv * F(((sc & 0xFF) ^ 0x80) - 0x80)
    return True


@njit(**_JIT)
def _requant_lanes(X, LL, dl, ibest, zero, nl):
    """Levels against the rounded scales, across lanes: 32 + clamp(nearest_int(x / d), -32, 31)
    with d = dl[lane]; where d == 0, make_qx_quants' own level from ibest (0 in a zero lane).
    nearest_int32 is ggml's mantissa read in int32 IR: exact for any value, and SIMD."""
    lo = np.int32(-32)
    hi = np.int32(31)
    for i in range(X.shape[0]):
        for l in range(nl):
            v = X[i, l]
            d = dl[l]
            req = min(max(nearest_int32(v / d), lo), hi)
            keep = min(max(nearest_int32(ibest[l] * v), lo), hi)
            q = req if d != 0 else keep
            LL[i, l] = np.int32(0) if (d == 0) & zero[l] else q + np.int32(32)


@njit(parallel=True, **_JIT)
def _quantize(x, n_per_row, qw, use_w, out, nthreads):
    nb = n_per_row // 256
    total = x.size // 256
    n_batches = (total + SB_PER_BATCH - 1) // SB_PER_BATCH
    nwork = max(1, min(n_batches, 4 * nthreads))
    for wk in prange(nwork):                     # scratch once per work item, not per batch
        X = np.empty((16, LANES), np.float32)
        W = np.empty((16, LANES), np.float32)
        LL = np.empty((16, LANES), np.int32)
        scale = np.empty(LANES, np.float32)
        ibest = np.empty(LANES, np.float32)
        dl = np.empty(LANES, np.float32)
        zero = np.empty(LANES, np.bool_)
        live = np.empty(SB_PER_BATCH, np.bool_)
        work = np.empty((6, LANES), np.float32)
        L = np.empty(256, np.int32)
        for t in range(wk * n_batches // nwork, (wk + 1) * n_batches // nwork):
            b0 = t * SB_PER_BATCH
            n_sb = min(total, b0 + SB_PER_BATCH) - b0
            nl = 16 * n_sb
            for s in range(n_sb):                # transpose: X[i, lane] = x of sub-block lane
                base = (b0 + s) * 256
                wbase = ((b0 + s) % nb) * 256
                for ib in range(16):
                    lane = 16 * s + ib
                    for i in range(16):
                        v = x[base + 16 * ib + i]
                        X[i, lane] = v
                        W[i, lane] = qw[wbase + 16 * ib + i] if use_w else v * v
            qx_lanes(X, W, 32, nl, scale, ibest, zero, work)
            for s in range(n_sb):
                live[s] = _scales(scale[16 * s:16 * s + 16], out, (b0 + s) * TYPE_SIZE,
                                  dl[16 * s:16 * s + 16])
            _requant_lanes(X, LL, dl, ibest, zero, nl)
            for s in range(n_sb):
                if live[s]:
                    for ib in range(16):
                        for i in range(16):
                            L[16 * ib + i] = LL[i, 16 * s + ib]
                    pack_q6_k(L, out, (b0 + s) * TYPE_SIZE)


@register("Q6_K", "cpu")
def q6_k_cpu(rows, imatrix=None, threads=None):
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    out = np.empty(n_rows * (n_per_row // 256) * TYPE_SIZE, np.uint8)
    _quantize(flat(rows), n_per_row, weights_or_dummy(imatrix), imatrix is not None, out,
              get_num_threads())
    return out.reshape(n_rows, -1)
