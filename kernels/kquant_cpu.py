"""numba CPU kernels for Q2_K, Q4_K and Q5_K, byte-identical to ggml_quantize_chunk.

Same algorithm as the numpy spec (kquant_search, q4_k, q5_k, q2_k). Threads (prange) take
batches of super-blocks; within a batch the sub-blocks are searched side by side
(kquant_cpu_ops.search_lanes, SIMD across sub-blocks), then each super-block's scales are
quantized, its weights requantized and its bytes packed.
"""
from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from .cpu_bits import nearest_int32 as nearest_int
from .cpu_common import nonfinite, raise_on_nonfinite
from .kquant_cpu_ops import JIT as _JIT
from .kquant_cpu_ops import search_lanes
from .kquant_ops import make_qp_quants
from .ops import fp16_bits, fp16_value

LANES = 64                                   # sub-blocks searched side by side per batch
KINDS = {"Q4_K": 0, "Q5_K": 1, "Q2_K": 2}


@njit(**_JIT)
def _superblock_q45(s, out, lane0, xt, L, scale_out, min_out, swl, has_im, nmax, clamp_qp,
                    tmp_f, tmp_l):
    """Scales, mins, requantization and packing of one Q4_K/Q5_K super-block (lanes lane0..+8)."""
    zero = np.float32(0.0)
    sc_f, mn_f, sw_f = tmp_f[0], tmp_f[1], tmp_f[2]
    ls, lm = tmp_l[0], tmp_l[1]
    for g in range(8):
        sc_f[g] = scale_out[lane0 + g]
        mn_f[g] = min_out[lane0 + g]
        sw_f[g] = swl[lane0 + g]
    if has_im:
        d = make_qp_quants(sc_f, 8, 63, sw_f, ls)
        dmin = make_qp_quants(mn_f, 8, 63, sw_f, lm)
        if clamp_qp:
            for g in range(8):
                ls[g] = min(63, ls[g])
                lm[g] = min(63, lm[g])
    else:
        max_scale = zero
        max_min = zero
        for g in range(8):
            if sc_f[g] > max_scale:
                max_scale = sc_f[g]
            if mn_f[g] > max_min:
                max_min = mn_f[g]
        inv_scale = np.float32(63.0) / max_scale if max_scale > zero else zero
        inv_min = np.float32(63.0) / max_min if max_min > zero else zero
        for g in range(8):
            ls[g] = min(63, nearest_int(inv_scale * sc_f[g]) & 0xFF)
            lm[g] = min(63, nearest_int(inv_min * mn_f[g]) & 0xFF)
        d = max_scale / np.float32(63.0)
        dmin = max_min / np.float32(63.0)
    d16 = fp16_bits(d)
    dmin16 = fp16_bits(dmin)
    out[s, 0] = d16 & 0xFF
    out[s, 1] = d16 >> 8
    out[s, 2] = dmin16 & 0xFF
    out[s, 3] = dmin16 >> 8
    q = out[s, 4:16]
    for j in range(8):   # pack 6-bit scales and mins exactly as ggml does, uint8 stores and all
        if j < 4:
            q[j] = ls[j] & 0xFF
            q[j + 4] = lm[j] & 0xFF
        else:
            q[j + 4] = ((ls[j] & 0xF) | ((lm[j] & 0xF) << 4)) & 0xFF
            q[j - 4] = (np.int64(q[j - 4]) | ((ls[j] >> 4) << 6)) & 0xFF
            q[j] = (np.int64(q[j]) | ((lm[j] >> 4) << 6)) & 0xFF
    df = fp16_value(d16)
    dminf = fp16_value(dmin16)
    for j in range(8):   # get_scale_min_k4, then requantize against the stored scales
        if j < 4:
            sc = np.int64(q[j]) & 63
            m = np.int64(q[j + 4]) & 63
        else:
            sc = (np.int64(q[j + 4]) & 0xF) | ((np.int64(q[j - 4]) >> 6) << 4)
            m = (np.int64(q[j + 4]) >> 4) | ((np.int64(q[j]) >> 6) << 4)
        dd = df * np.float32(sc)
        if dd == zero:
            continue
        dm = dminf * np.float32(m)
        lane = lane0 + j
        for i in range(32):
            L[i, lane] = min(max(nearest_int((xt[i, lane] + dm) / dd), 0), nmax)
    if nmax == 15:
        for k in range(4):
            for i in range(32):
                out[s, 16 + 32 * k + i] = L[i, lane0 + 2 * k] | (L[i, lane0 + 2 * k + 1] << 4)
    else:
        for i in range(32):
            h = 0
            for k in range(4):
                l1 = L[i, lane0 + 2 * k]
                l2 = L[i, lane0 + 2 * k + 1]
                h |= ((l1 >> 4) << (2 * k)) | ((l2 >> 4) << (2 * k + 1))
                out[s, 48 + 32 * k + i] = (l1 & 0xF) | ((l2 & 0xF) << 4)
            out[s, 16 + i] = h


@njit(**_JIT)
def _superblock_q2(s, out, lane0, xt, L, scale_out, min_out, swl, has_im, tmp_f, tmp_l):
    """Scales, mins, requantization and packing of one Q2_K super-block (lanes lane0..+16)."""
    zero = np.float32(0.0)
    sc_f, mn_f, sw_f = tmp_f[0], tmp_f[1], tmp_f[2]
    ls, lm = tmp_l[0], tmp_l[1]
    for g in range(16):
        sc_f[g] = scale_out[lane0 + g]
        mn_f[g] = min_out[lane0 + g]
        sw_f[g] = swl[lane0 + g]
    sb = out[s, 0:16]
    if has_im:
        d = make_qp_quants(sc_f, 16, 15, sw_f, ls)
        dmin = make_qp_quants(mn_f, 16, 15, sw_f, lm)
        for g in range(16):
            sb[g] = (ls[g] | (lm[g] << 4)) & 0xFF
    else:
        max_scale = zero
        max_min = zero
        for g in range(16):
            if sc_f[g] > max_scale:
                max_scale = sc_f[g]
            if mn_f[g] > max_min:
                max_min = mn_f[g]
        d = zero
        dmin = zero
        if max_scale > zero:
            iscale = np.float32(15.0) / max_scale
            for g in range(16):
                sb[g] = nearest_int(iscale * sc_f[g]) & 0xFF
            d = max_scale / np.float32(15.0)
        else:
            for g in range(16):
                sb[g] = 0
        if max_min > zero:
            iscale = np.float32(15.0) / max_min
            for g in range(16):
                sb[g] = (np.int64(sb[g]) | (nearest_int(iscale * mn_f[g]) << 4)) & 0xFF
            dmin = max_min / np.float32(15.0)
    d16 = fp16_bits(d)
    dmin16 = fp16_bits(dmin)
    out[s, 80] = d16 & 0xFF
    out[s, 81] = d16 >> 8
    out[s, 82] = dmin16 & 0xFF
    out[s, 83] = dmin16 >> 8
    df = fp16_value(d16)
    dminf = fp16_value(dmin16)
    for j in range(16):
        dd = df * np.float32(np.int64(sb[j]) & 0xF)
        if dd == zero:
            continue
        dm = dminf * np.float32(np.int64(sb[j]) >> 4)
        lane = lane0 + j
        for i in range(16):
            L[i, lane] = min(max(nearest_int((xt[i, lane] + dm) / dd), 0), 3)
    for h in range(2):
        for i in range(32):
            v = 0
            for k in range(4):
                e = 128 * h + 32 * k + i
                v |= L[e % 16, lane0 + e // 16] << (2 * k)
            out[s, 16 + 32 * h + i] = v


@njit(parallel=True, **_JIT)
def _kernel(x, imatrix, has_im, kind, out, nthreads, bad):
    """x: (S, 256) super-blocks; imatrix: (n_per_row,) or dummy; out: (S, type_size) uint8;
    bad[batch] = NaN or Inf among the batch's weights."""
    S = x.shape[0]
    G = 16 if kind == 2 else 8
    n = 256 // G
    nmax = 3 if kind == 2 else (15 if kind == 0 else 31)
    if has_im:
        rmin, rdelta, nstep, use_mad = -0.9, 0.05, 36, False
    elif kind == 0:
        rmin, rdelta, nstep, use_mad = -1.0, 0.1, 20, False
    elif kind == 1:
        rmin, rdelta, nstep, use_mad = -0.5, 0.1, 15, False
    else:
        rmin, rdelta, nstep, use_mad = -0.5, 0.1, 15, True
    npr = imatrix.shape[0] // 256 if has_im else 1
    B = LANES // G
    nbatch = (S + B - 1) // B
    nwork = max(1, min(nbatch, 4 * nthreads))
    for wk in prange(nwork):
        xt = np.empty((n, LANES), np.float32)
        wt = np.empty((n, LANES), np.float32)
        L = np.zeros((n, LANES), np.int32)
        st = np.zeros((16, LANES), np.float32)
        scale_out = np.zeros(LANES, np.float32)
        min_out = np.zeros(LANES, np.float32)
        swl = np.zeros(LANES, np.float32)
        aux = np.zeros(LANES, np.float32)
        tmp_f = np.zeros((3, 16), np.float32)
        tmp_l = np.zeros((2, 16), np.int64)
        for bt in range(wk * nbatch // nwork, (wk + 1) * nbatch // nwork):
            s0 = bt * B
            nsb = min(B, S - s0)
            nl = nsb * G
            flag = False
            for b in range(nsb):
                for g in range(G):
                    for i in range(n):
                        v = x[s0 + b, g * n + i]
                        xt[i, b * G + g] = v
                        flag |= nonfinite(v)
            bad[bt] = flag
            if has_im:
                for b in range(nsb):   # sigma2 over the whole super-block, in memory order
                    s2 = np.float32(0.0)
                    for l in range(256):
                        s2 += x[s0 + b, l] * x[s0 + b, l]
                    sig = np.float32(2.0) * s2 / np.float32(256.0) if kind != 2 else s2 / np.float32(256.0)
                    for g in range(G):
                        aux[b * G + g] = sig
                for b in range(nsb):
                    p = ((s0 + b) % npr) * 256
                    for g in range(G):
                        lane = b * G + g
                        for i in range(n):
                            xv = xt[i, lane]
                            wt[i, lane] = imatrix[p + g * n + i] * np.sqrt(aux[lane] + xv * xv)
            elif kind == 2:
                for i in range(n):
                    for g in range(nl):
                        wt[i, g] = abs(xt[i, g])
            else:
                for g in range(nl):
                    aux[g] = np.float32(0.0)
                for i in range(n):
                    for g in range(nl):
                        aux[g] += xt[i, g] * xt[i, g]
                for g in range(nl):
                    aux[g] = np.sqrt(aux[g] / np.float32(32.0))
                for i in range(n):
                    for g in range(nl):
                        wt[i, g] = aux[g] + abs(xt[i, g])
            for g in range(nl):
                swl[g] = np.float32(0.0)
            for i in range(n):
                for g in range(nl):
                    swl[g] += wt[i, g]
            search_lanes(xt, wt, L, st, nl, nmax, rmin, rdelta, nstep, use_mad, has_im,
                         scale_out, min_out)
            for b in range(nsb):
                if kind == 2:
                    _superblock_q2(s0 + b, out, b * G, xt, L, scale_out, min_out, swl, has_im,
                                   tmp_f, tmp_l)
                else:
                    _superblock_q45(s0 + b, out, b * G, xt, L, scale_out, min_out, swl, has_im,
                                    nmax, kind == 1, tmp_f, tmp_l)


_TYPE_SIZE = {"Q4_K": 144, "Q5_K": 176, "Q2_K": 84}


def quantize(qtype: str, rows: np.ndarray, imatrix: np.ndarray | None, threads: int | None):
    n_rows, n_per_row = rows.shape
    x = rows.reshape(-1, 256)
    out = np.empty((x.shape[0], _TYPE_SIZE[qtype]), np.uint8)
    im = np.zeros(256, np.float32) if imatrix is None else imatrix
    old = get_num_threads()
    if threads:
        set_num_threads(max(1, min(threads, old)))
    bad = np.zeros(x.shape[0], np.bool_)     # per batch; a batch holds >= 1 super-block
    try:
        _kernel(x, im, imatrix is not None, KINDS[qtype], out, get_num_threads(), bad)
    finally:
        set_num_threads(old)
    raise_on_nonfinite(rows, bad)
    return out.reshape(n_rows, n_per_row // 256 * _TYPE_SIZE[qtype])
