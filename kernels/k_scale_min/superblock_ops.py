"""Per-super-block code of Q2_K, Q4_K and Q5_K, one source for the numba CPU kernels (cpu.py)
and the numba-cuda kernels (cuda.py): make_qp_quants (ggml-quants.c) and the finishing of a
super-block once its sub-blocks' scales and mins are searched (quantize the scales, fp16 d and
dmin, requantize the weights against the stored scales, pack the bytes).

Loaded normally these are cached njit functions; `load_cuda_twin("k_scale_min.superblock_ops")`
loads this file again as CUDA device code. The rules of shared/ops.py apply: float32
throughout, sums in ggml's order, every product that feeds an addition or a comparison goes
through `mul`, so NVVM cannot contract it into an FMA.

The two kernels hold a super-block in different layouts (the CPU in lanes, element-major; the
GPU sub-block-major), so the finishing functions read sub-block j's element i of the weights x
and of the levels L at the flat index o + i*es + j*ss, and its scale, min and weight sum at
scales/mins/sws[so + j]. out is flat uint8, the super-block's bytes at out[oo:].
"""
from __future__ import annotations

from ..shared.ops import GROUP_MAX_EPS, F, jit_for, ops_for

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin

mul = _ops.mul
nearest_int = _ops.nearest_int
fp16_bits = _ops.fp16_bits
fp16_value = _ops.fp16_value
put_half = _ops.put_half


@_jit
def make_qp_quants(x, n, nmax, qw, L):
    """ggml's make_qp_quants on one super-block's n scales x with weights qw; L as uint8.
    Returns the scale."""
    zero = F(0)
    mx = zero
    for i in range(n):
        mx = mx if mx > x[i] else x[i]
    if mx < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return zero
    fnmax = F(nmax)
    iscale = fnmax / mx
    for i in range(n):
        L[i] = nearest_int(mul(iscale, x[i])) & 0xFF
    scale = F(1) / iscale
    best = zero
    for i in range(n):
        diff = x[i] - mul(scale, F(L[i]))
        best += mul(mul(qw[i], diff), diff)
    for step in range(-4, 5):
        if step != 0:
            iscale_is = (mul(F(0.1), F(step)) + fnmax) / mx
            scale_is = F(1) / iscale_is
            mse = zero
            for i in range(n):
                lf = F(min(nmax, nearest_int(mul(iscale_is, x[i]))))
                diff = x[i] - mul(scale_is, lf)
                mse += mul(mul(qw[i], diff), diff)
            if mse < best:
                best = mse
                iscale = iscale_is
    sumlx = zero
    suml2 = zero
    for i in range(n):
        l = min(nmax, nearest_int(mul(iscale, x[i])))
        L[i] = l & 0xFF
        lf = F(l)
        sumlx += mul(mul(qw[i], x[i]), lf)
        suml2 += mul(mul(qw[i], lf), lf)
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            w = qw[i]
            Li = F(L[i])
            slx = sumlx - mul(mul(w, x[i]), Li)
            sl2 = suml2 - mul(mul(w, Li), Li)
            if slx > zero and sl2 > zero:
                new_l = min(nmax, nearest_int(mul(x[i], sl2) / slx))
                if new_l != L[i]:
                    fl = F(new_l)
                    slx += mul(mul(w, x[i]), fl)
                    sl2 += mul(mul(w, fl), fl)
                    if mul(mul(slx, slx), suml2) > mul(mul(sumlx, sumlx), sl2):
                        L[i] = new_l & 0xFF
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    return sumlx / suml2 if suml2 > zero else zero


@_jit
def _gather(scales, mins, sws, so, n, sc_f, mn_f, sw_f):
    """The super-block's n sub-block scales, mins and weight sums, into scratch from index 0."""
    for g in range(n):
        sc_f[g] = scales[so + g]
        mn_f[g] = mins[so + g]
        sw_f[g] = sws[so + g]


@_jit
def _running_max(v, n):
    """C's `if (v[g] > m) m = v[g];` from m = 0."""
    m = F(0)
    for g in range(n):
        if v[g] > m:
            m = v[g]
    return m


@_jit
def finish_q45_k(x, L, o, es, ss, scales, mins, sws, so, has_im, nmax, out, oo,
                 sc_f, mn_f, sw_f, ls, lm):
    """One Q4_K (nmax 15) / Q5_K (nmax 31) super-block of 8 sub-blocks of 32: 6-bit scales and
    mins, fp16 d and dmin, requantization, packing. sc_f/mn_f/sw_f/ls/lm: scratch of 8."""
    zero = F(0)
    _gather(scales, mins, sws, so, 8, sc_f, mn_f, sw_f)
    if has_im:
        d = make_qp_quants(sc_f, 8, 63, sw_f, ls)
        dmin = make_qp_quants(mn_f, 8, 63, sw_f, lm)
        if nmax == 31:   # Q5_K clamps to 63 here, Q4_K does not
            for g in range(8):
                ls[g] = min(63, ls[g])
                lm[g] = min(63, lm[g])
    else:
        max_scale = _running_max(sc_f, 8)
        max_min = _running_max(mn_f, 8)
        inv_scale = F(63) / max_scale if max_scale > zero else zero
        inv_min = F(63) / max_min if max_min > zero else zero
        for g in range(8):
            ls[g] = min(63, nearest_int(mul(inv_scale, sc_f[g])) & 0xFF)
            lm[g] = min(63, nearest_int(mul(inv_min, mn_f[g])) & 0xFF)
        d = max_scale / F(63)
        dmin = max_min / F(63)
    d16 = fp16_bits(d)
    dmin16 = fp16_bits(dmin)
    put_half(out, oo, d16)
    put_half(out, oo + 2, dmin16)
    q = oo + 4
    for j in range(8):   # pack 6-bit scales and mins exactly as ggml does, uint8 stores and all
        if j < 4:
            out[q + j] = ls[j] & 0xFF
            out[q + j + 4] = lm[j] & 0xFF
        else:
            out[q + j + 4] = ((ls[j] & 0xF) | ((lm[j] & 0xF) << 4)) & 0xFF
            out[q + j - 4] = (int(out[q + j - 4]) | ((ls[j] >> 4) << 6)) & 0xFF
            out[q + j] = (int(out[q + j]) | ((lm[j] >> 4) << 6)) & 0xFF
    df = fp16_value(d16)
    dminf = fp16_value(dmin16)
    for j in range(8):   # get_scale_min_k4, then requantize against the stored scales
        if j < 4:
            sc = int(out[q + j]) & 63
            m = int(out[q + j + 4]) & 63
        else:
            sc = (int(out[q + j + 4]) & 0xF) | ((int(out[q + j - 4]) >> 6) << 4)
            m = (int(out[q + j + 4]) >> 4) | ((int(out[q + j]) >> 6) << 4)
        dd = mul(df, F(sc))
        if dd != zero:   # ggml keeps the searched levels where the stored scale is 0
            dm = mul(dminf, F(m))
            for i in range(32):
                k = o + i * es + j * ss
                L[k] = min(max(nearest_int((x[k] + dm) / dd), 0), nmax)
    if nmax == 15:
        for k in range(4):
            for i in range(32):
                l1 = L[o + i * es + 2 * k * ss]
                l2 = L[o + i * es + (2 * k + 1) * ss]
                out[oo + 16 + 32 * k + i] = l1 | (l2 << 4)
    else:
        for i in range(32):
            h = 0
            for k in range(4):
                l1 = L[o + i * es + 2 * k * ss]
                l2 = L[o + i * es + (2 * k + 1) * ss]
                h |= ((l1 >> 4) << (2 * k)) | ((l2 >> 4) << (2 * k + 1))
                out[oo + 48 + 32 * k + i] = (l1 & 0xF) | ((l2 & 0xF) << 4)
            out[oo + 16 + i] = h


@_jit
def finish_q2_k(x, L, o, es, ss, scales, mins, sws, so, has_im, out, oo,
                sc_f, mn_f, sw_f, ls, lm):
    """One Q2_K super-block of 16 sub-blocks of 16: 4-bit scales and mins (stored first),
    fp16 d and dmin (last), requantization to 2 bits, packing. Scratch of 16."""
    zero = F(0)
    _gather(scales, mins, sws, so, 16, sc_f, mn_f, sw_f)
    if has_im:
        d = make_qp_quants(sc_f, 16, 15, sw_f, ls)
        dmin = make_qp_quants(mn_f, 16, 15, sw_f, lm)
        for g in range(16):
            out[oo + g] = (ls[g] | (lm[g] << 4)) & 0xFF
    else:
        max_scale = _running_max(sc_f, 16)
        max_min = _running_max(mn_f, 16)
        d = zero
        dmin = zero
        for g in range(16):
            out[oo + g] = 0
        if max_scale > zero:
            iscale = F(15) / max_scale
            for g in range(16):
                out[oo + g] = nearest_int(mul(iscale, sc_f[g])) & 0xFF
            d = max_scale / F(15)
        if max_min > zero:
            iscale = F(15) / max_min
            for g in range(16):
                out[oo + g] = (int(out[oo + g]) | (nearest_int(mul(iscale, mn_f[g])) << 4)) & 0xFF
            dmin = max_min / F(15)
    d16 = fp16_bits(d)
    dmin16 = fp16_bits(dmin)
    put_half(out, oo + 80, d16)
    put_half(out, oo + 82, dmin16)
    df = fp16_value(d16)
    dminf = fp16_value(dmin16)
    for j in range(16):
        sb = int(out[oo + j])
        dd = mul(df, F(sb & 0xF))
        if dd != zero:
            dm = mul(dminf, F(sb >> 4))
            for i in range(16):
                k = o + i * es + j * ss
                L[k] = min(max(nearest_int((x[k] + dm) / dd), 0), 3)
    for h in range(2):   # byte i of half h holds the levels of weights 128h + 32k + i, k = 0..3
        for i in range(32):
            v = 0
            for k in range(4):
                e = 128 * h + 32 * k + i
                v |= L[o + (e % 16) * es + (e // 16) * ss] << (2 * k)
            out[oo + 16 + 32 * h + i] = v
