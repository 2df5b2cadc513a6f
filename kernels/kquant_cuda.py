"""numba-cuda kernels for Q2_K, Q4_K and Q5_K, byte-identical to ggml_quantize_chunk.

Two launches per tensor: `_search` runs one thread per sub-block (weights, then the
make_qkx2/qkx3 scale and min search of kquant_cuda_ops); `_finish_q45`/`_finish_q2` run one
thread per super-block (6- or 4-bit scale quantization, fp16 super-scales, requantization, byte
packing). All float products go through `fmul` so nothing is contracted into an fma (see
kquant_cuda_ops). Works in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) and on a GPU.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, int32

from .cuda_common import load_cuda_twin
from .kquant_cuda_ops import ZERO, fdiv, fmul, qkx_search

_ops = load_cuda_twin("ops")                  # ggml's rounding and fp16, shared with the CPU
nearest_int = _ops.nearest_int
fp16_bits = _ops.fp16_bits
fp16_value = _ops.fp16_value
make_qp_quants = load_cuda_twin("kquant_ops").make_qp_quants


@cuda.jit
def _search(x, imatrix, has_im, G, nmax, rmin, rdelta, nstep, use_mad, sigma_twice,
            scales, mins, sws, Lg):
    """One thread per sub-block t = s*G + g: weights, then the scale/min search."""
    t = cuda.grid(1)
    S = x.shape[0]
    if t >= S * G:
        return
    n = 256 // G
    s = t // G
    g = t - s * G
    xs = cuda.local.array(32, float32)
    w = cuda.local.array(32, float32)
    L = cuda.local.array(32, int32)
    Laux = cuda.local.array(32, int32)
    for i in range(n):
        xs[i] = x[s, g * n + i]
    if has_im:
        s2 = ZERO   # sigma2 over the whole super-block, in memory order, as ggml does
        for l in range(256):
            s2 += fmul(x[s, l], x[s, l])
        sigma2 = fdiv(fmul(float32(2.0), s2) if sigma_twice else s2, float32(256.0))
        p = (s % (imatrix.shape[0] // 256)) * 256 + g * n
        for i in range(n):
            w[i] = fmul(imatrix[p + i], math.sqrt(sigma2 + fmul(xs[i], xs[i])))
    elif use_mad:   # Q2_K reference: |x|
        for i in range(n):
            w[i] = abs(xs[i])
    else:           # Q4_K/Q5_K reference: rms of the sub-block + |x|
        s2 = ZERO
        for i in range(n):
            s2 += fmul(xs[i], xs[i])
        av = math.sqrt(fdiv(s2, float32(32.0)))
        for i in range(n):
            w[i] = av + abs(xs[i])
    sw = ZERO
    for i in range(n):
        sw += w[i]
    sc, mn = qkx_search(xs, w, L, Laux, n, nmax, rmin, rdelta, nstep, use_mad, has_im)
    scales[t] = sc
    mins[t] = mn
    sws[t] = sw
    for i in range(n):
        Lg[t, i] = L[i]


@cuda.jit
def _finish_q45(x, has_im, nmax, scales, mins, sws, Lg, out):
    """One thread per Q4_K/Q5_K super-block: 6-bit scales/mins, fp16 d/dmin, requantize, pack."""
    s = cuda.grid(1)
    if s >= x.shape[0]:
        return
    sc_f = cuda.local.array(8, float32)
    mn_f = cuda.local.array(8, float32)
    sw_f = cuda.local.array(8, float32)
    ls = cuda.local.array(8, int32)
    lm = cuda.local.array(8, int32)
    q = cuda.local.array(12, int32)
    for g in range(8):
        sc_f[g] = scales[s * 8 + g]
        mn_f[g] = mins[s * 8 + g]
        sw_f[g] = sws[s * 8 + g]
    if has_im:
        d = make_qp_quants(sc_f, 8, 63, sw_f, ls)
        dmin = make_qp_quants(mn_f, 8, 63, sw_f, lm)
        if nmax == 31:   # Q5_K clamps to 63 here, Q4_K does not
            for g in range(8):
                ls[g] = min(63, ls[g])
                lm[g] = min(63, lm[g])
    else:
        max_scale = ZERO
        max_min = ZERO
        for g in range(8):
            if sc_f[g] > max_scale:
                max_scale = sc_f[g]
            if mn_f[g] > max_min:
                max_min = mn_f[g]
        inv_scale = float32(63.0) / max_scale if max_scale > ZERO else ZERO
        inv_min = float32(63.0) / max_min if max_min > ZERO else ZERO
        for g in range(8):
            ls[g] = min(63, nearest_int(fmul(inv_scale, sc_f[g])) & 0xFF)
            lm[g] = min(63, nearest_int(fmul(inv_min, mn_f[g])) & 0xFF)
        d = max_scale / float32(63.0)
        dmin = max_min / float32(63.0)
    d16 = fp16_bits(d)
    dmin16 = fp16_bits(dmin)
    out[s, 0] = d16 & 0xFF
    out[s, 1] = d16 >> 8
    out[s, 2] = dmin16 & 0xFF
    out[s, 3] = dmin16 >> 8
    for j in range(8):
        if j < 4:
            q[j] = ls[j] & 0xFF
            q[j + 4] = lm[j] & 0xFF
        else:
            q[j + 4] = ((ls[j] & 0xF) | ((lm[j] & 0xF) << 4)) & 0xFF
            q[j - 4] = (q[j - 4] | ((ls[j] >> 4) << 6)) & 0xFF
            q[j] = (q[j] | ((lm[j] >> 4) << 6)) & 0xFF
    for j in range(12):
        out[s, 4 + j] = q[j]
    df = fp16_value(d16)
    dminf = fp16_value(dmin16)
    for j in range(8):
        if j < 4:
            sc = q[j] & 63
            m = q[j + 4] & 63
        else:
            sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)
            m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4)
        dd = fmul(df, float32(sc))
        if dd != ZERO:
            dm = fmul(dminf, float32(m))
            for i in range(32):
                Lg[s * 8 + j, i] = min(max(nearest_int((x[s, 32 * j + i] + dm) / dd), 0), nmax)
    for k in range(4):
        for i in range(32):
            l1 = Lg[s * 8 + 2 * k, i]
            l2 = Lg[s * 8 + 2 * k + 1, i]
            if nmax == 15:
                out[s, 16 + 32 * k + i] = l1 | (l2 << 4)
            else:
                out[s, 48 + 32 * k + i] = (l1 & 0xF) | ((l2 & 0xF) << 4)
    if nmax == 31:
        for i in range(32):
            h = 0
            for k in range(4):
                h |= ((Lg[s * 8 + 2 * k, i] >> 4) << (2 * k)) | ((Lg[s * 8 + 2 * k + 1, i] >> 4) << (2 * k + 1))
            out[s, 16 + i] = h


@cuda.jit
def _finish_q2(x, has_im, scales, mins, sws, Lg, out):
    """One thread per Q2_K super-block: 4-bit scales/mins, fp16 d/dmin, requantize, pack."""
    s = cuda.grid(1)
    if s >= x.shape[0]:
        return
    sc_f = cuda.local.array(16, float32)
    mn_f = cuda.local.array(16, float32)
    sw_f = cuda.local.array(16, float32)
    ls = cuda.local.array(16, int32)
    lm = cuda.local.array(16, int32)
    sb = cuda.local.array(16, int32)
    for g in range(16):
        sc_f[g] = scales[s * 16 + g]
        mn_f[g] = mins[s * 16 + g]
        sw_f[g] = sws[s * 16 + g]
    if has_im:
        d = make_qp_quants(sc_f, 16, 15, sw_f, ls)
        dmin = make_qp_quants(mn_f, 16, 15, sw_f, lm)
        for g in range(16):
            sb[g] = (ls[g] | (lm[g] << 4)) & 0xFF
    else:
        max_scale = ZERO
        max_min = ZERO
        for g in range(16):
            if sc_f[g] > max_scale:
                max_scale = sc_f[g]
            if mn_f[g] > max_min:
                max_min = mn_f[g]
        d = ZERO
        dmin = ZERO
        for g in range(16):
            sb[g] = 0
        if max_scale > ZERO:
            iscale = float32(15.0) / max_scale
            for g in range(16):
                sb[g] = nearest_int(fmul(iscale, sc_f[g])) & 0xFF
            d = max_scale / float32(15.0)
        if max_min > ZERO:
            iscale = float32(15.0) / max_min
            for g in range(16):
                sb[g] = (sb[g] | (nearest_int(fmul(iscale, mn_f[g])) << 4)) & 0xFF
            dmin = max_min / float32(15.0)
    d16 = fp16_bits(d)
    dmin16 = fp16_bits(dmin)
    for g in range(16):
        out[s, g] = sb[g]
    out[s, 80] = d16 & 0xFF
    out[s, 81] = d16 >> 8
    out[s, 82] = dmin16 & 0xFF
    out[s, 83] = dmin16 >> 8
    df = fp16_value(d16)
    dminf = fp16_value(dmin16)
    for j in range(16):
        dd = fmul(df, float32(sb[j] & 0xF))
        if dd != ZERO:
            dm = fmul(dminf, float32(sb[j] >> 4))
            for i in range(16):
                Lg[s * 16 + j, i] = min(max(nearest_int((x[s, 16 * j + i] + dm) / dd), 0), 3)
    for h in range(2):
        for i in range(32):
            v = 0
            for k in range(4):
                e = 128 * h + 32 * k + i
                v |= Lg[s * 16 + e // 16, e % 16] << (2 * k)
            out[s, 16 + 32 * h + i] = v


# qtype -> (sub-blocks per super-block, nmax, type_size, no-imatrix rmin, rdelta, nstep, use_mad)
_PARAMS = {
    "Q4_K": (8, 15, 144, -1.0, 0.1, 20, False),
    "Q5_K": (8, 31, 176, -0.5, 0.1, 15, False),
    "Q2_K": (16, 3, 84, -0.5, 0.1, 15, True),
}
_THREADS = 128


def quantize(qtype: str, rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
    G, nmax, type_size, rmin, rdelta, nstep, use_mad = _PARAMS[qtype]
    has_im = imatrix is not None
    if has_im:
        rmin, rdelta, nstep, use_mad = -0.9, 0.05, 36, False
    n_rows = rows.shape[0]
    if rows.size == 0:   # a launch needs at least one block
        return np.zeros((n_rows, rows.shape[1] // 256 * type_size), np.uint8)
    x = cuda.to_device(np.ascontiguousarray(rows.reshape(-1, 256)))
    S = x.shape[0]
    im = cuda.to_device(imatrix if has_im else np.zeros(256, np.float32))
    scales = cuda.device_array(S * G, np.float32)
    mins = cuda.device_array(S * G, np.float32)
    sws = cuda.device_array(S * G, np.float32)
    Lg = cuda.device_array((S * G, 256 // G), np.int32)
    out = cuda.device_array((S, type_size), np.uint8)
    # The simulator computes in numpy scalars, which warn where ggml quietly overflows to inf.
    with np.errstate(all="ignore"):
        _search[(S * G + _THREADS - 1) // _THREADS, _THREADS](
            x, im, has_im, G, nmax, np.float32(rmin), np.float32(rdelta), nstep, use_mad,
            qtype != "Q2_K", scales, mins, sws, Lg)
        blocks = (S + _THREADS - 1) // _THREADS
        if qtype == "Q2_K":
            _finish_q2[blocks, _THREADS](x, has_im, scales, mins, sws, Lg, out)
        else:
            _finish_q45[blocks, _THREADS](x, has_im, nmax, scales, mins, sws, Lg, out)
    return out.copy_to_host().reshape(n_rows, rows.shape[1] // 256 * type_size)
