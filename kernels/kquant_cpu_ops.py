"""Building blocks of the numba CPU K-quant kernels (kquant_cpu): ggml's rounding helpers and
the make_qkx2/qkx3 and make_qp_quants searches, float32 throughout, sums in C order.

`search_lanes` runs many sub-blocks side by side: arrays are laid out (element, lane) with one
lane per sub-block and the innermost loops walk the lanes, so LLVM vectorizes across independent
sub-blocks while each lane's reduction keeps ggml's order. No fastmath: no reassociation and no
FMA contraction (ggml's reference is built without FMA).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

MAGIC = np.float32(12582912.0)   # 1.5 * 2**23: nearest_int's round-half-even trick
GROUP_MAX_EPS = np.float32(1e-15)
MANT = np.int32(0x007FFFFF)
HALF = np.int32(0x00400000)
JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@intrinsic
def f32_bits(typingctx, x):
    """The IEEE bits of a float32 as int32 (a bitcast, vectorizable)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, x):
    if x != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def nearest_int32(typingctx, v):
    """nearest_int in pure int32 IR (numba would widen `&` and `-` to int64, halving the SIMD
    width of the level loops): fadd 1.5*2**23, bitcast, mask the mantissa, subtract 2**22."""
    if v != types.float32:
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        t = builder.fadd(args[0], ir.Constant(ir.FloatType(), 12582912.0))
        m = builder.and_(builder.bitcast(t, i32), ir.Constant(i32, 0x007FFFFF))
        return builder.sub(m, ir.Constant(i32, 0x00400000))
    return types.int32(types.float32), codegen


@njit(**JIT)
def nearest_int(v):
    return (f32_bits(v + MAGIC) & MANT) - HALF


@njit(**JIT)
def fp16_bits(f):
    """float32 -> IEEE half bits, round to nearest even (numpy's npy_floatbits_to_halfbits)."""
    b = np.int64(f32_bits(f)) & 0xFFFFFFFF
    h_sgn = (b & 0x80000000) >> 16
    f_exp = b & 0x7F800000
    if f_exp >= 0x47800000:
        if f_exp == 0x7F800000 and (b & 0x007FFFFF) != 0:
            return h_sgn | 0x7E00
        return h_sgn | 0x7C00
    if f_exp <= 0x38000000:
        if f_exp < 0x33000000:
            return h_sgn
        e = f_exp >> 23
        f_sig = 0x00800000 + (b & 0x007FFFFF)
        if (f_sig & ((1 << (127 - e)) - 1)) != (1 << (125 - e)):
            f_sig += 1 << (125 - e)
        return h_sgn | (f_sig >> (126 - e))
    h_exp = (f_exp - 0x38000000) >> 13
    f_sig = b & 0x007FFFFF
    if (f_sig & 0x00003FFF) != 0x00001000:
        f_sig += 0x00001000
    return h_sgn + h_exp + (f_sig >> 13)


@njit(**JIT)
def fp16_to_f32(h):
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        v = np.float32(m) * np.float32(2.0 ** -24)
    elif e == 31:
        v = bits_f32(np.int32(0x7F800000 | (m << 13)))
    else:
        v = bits_f32(np.int32(((e + 112) << 23) | (m << 13)))
    return -v if h & 0x8000 else v


@njit(**JIT)
def _level(v, nmax, step_form):
    """The level make_qkx2/qkx3 give a scaled value v: the first guess and make_qkx2's steps
    clamp nearest_int(v); make_qkx3's steps take v > 0 ? nearest_int(MIN(v, nmax)) : 0."""
    zero = np.int32(0)
    if step_form:
        return nearest_int32(v if v < np.float32(nmax) else np.float32(nmax)) if v > 0 else zero
    return min(max(nearest_int32(v), zero), np.int32(nmax))


@njit(**JIT)
def search_lanes(xt, wt, L, st, nl, nmax, rmin, rdelta, nstep, use_mad, qkx3, scale_out,
                 min_out):
    """make_qkx2_quants (qkx3=False) / make_qkx3_quants for lanes 0..nl-1 of xt/wt (n, lanes).

    Levels are never stored per step: each pass recomputes them from (iscale, min), and the
    winning step's (iscale, min) is kept so its levels are recomputed once at the end. Each
    lane's sums still run over its elements in C order."""
    n = xt.shape[0]
    mn, mx, sw, sx = st[0], st[1], st[2], st[3]
    scale, best, iscale = st[4], st[5], st[6]
    tsc, tmn, cur, take, mn0 = st[7], st[8], st[9], st[10], st[11]
    bis, bmn, bform = st[12], st[13], st[14]          # winner's iscale, min, level form
    sl = np.empty(nl, np.float32)
    sl2 = np.empty(nl, np.float32)
    sxl = np.empty(nl, np.float32)
    fnmax = np.float32(nmax)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for g in range(nl):
        mn[g] = xt[0, g]
        mx[g] = xt[0, g]
        sw[g] = wt[0, g]
        sx[g] = wt[0, g] * xt[0, g]
    for i in range(1, n):
        for g in range(nl):
            v = xt[i, g]
            w = wt[i, g]
            mn[g] = v if v < mn[g] else mn[g]
            mx[g] = v if v > mx[g] else mx[g]
            sw[g] += w
            sx[g] += w * v
    for g in range(nl):
        m = zero if mn[g] > zero else mn[g]
        mn[g] = m
        mn0[g] = m
        iscale[g] = fnmax / (mx[g] - m)
        scale[g] = one / iscale[g]
        best[g] = zero
        bis[g] = iscale[g]
        bmn[g] = m
        bform[g] = zero
    for i in range(n):
        for g in range(nl):
            l = _level(iscale[g] * (xt[i, g] - mn[g]), nmax, False)
            d = scale[g] * np.float32(l) + mn[g] - xt[i, g]
            d = abs(d) if use_mad else d * d
            best[g] += wt[i, g] * d
    frmin = np.float32(rmin)
    frdelta = np.float32(rdelta)
    for step in range(nstep + 1):
        num = frmin + frdelta * np.float32(step) + fnmax
        for g in range(nl):
            iscale[g] = num / (mx[g] - mn[g])
            sl[g] = zero
            sl2[g] = zero
            sxl[g] = zero
        for i in range(n):
            for g in range(nl):
                lf = np.float32(_level(iscale[g] * (xt[i, g] - mn[g]), nmax, qkx3))
                wl = wt[i, g] * lf
                sl[g] += wl
                sl2[g] += wl * lf
                sxl[g] += wl * xt[i, g]
        for g in range(nl):
            D = sw[g] * sl2[g] - sl[g] * sl[g]
            ts = (sw[g] * sxl[g] - sx[g] * sl[g]) / D
            tm = (sl2[g] * sx[g] - sl[g] * sxl[g]) / D
            if tm > zero:
                tm = zero
                ts = sxl[g] / sl2[g]
            take[g] = one if D > zero else zero
            tsc[g] = ts
            tmn[g] = tm
            cur[g] = zero
        for i in range(n):
            for g in range(nl):
                lf = np.float32(_level(iscale[g] * (xt[i, g] - mn[g]), nmax, qkx3))
                d = tsc[g] * lf + tmn[g] - xt[i, g]
                d = abs(d) if use_mad else d * d
                cur[g] += wt[i, g] * d
        for g in range(nl):
            if take[g] > zero and cur[g] < best[g]:
                best[g] = cur[g]
                scale[g] = tsc[g]
                bis[g] = iscale[g]
                bmn[g] = mn[g]
                bform[g] = one if qkx3 else zero
                mn[g] = tmn[g]
    for i in range(n):
        for g in range(nl):
            L[i, g] = _level(bis[g] * (xt[i, g] - bmn[g]), nmax, bform[g] > zero)
    for g in range(nl):
        flat = (mx[g] <= mn0[g]) if qkx3 else (mx[g] == mn0[g])
        if flat:
            scale_out[g] = zero
            min_out[g] = -mn0[g]
            for i in range(n):
                L[i, g] = 0
        else:
            scale_out[g] = scale[g]
            min_out[g] = -mn[g]


@njit(**JIT)
def make_qp_quants(x, nmax, qw, L):
    """ggml's make_qp_quants on one super-block's scales x (n,) with weights qw; L as uint8."""
    n = x.shape[0]
    zero = np.float32(0.0)
    mx = zero
    for i in range(n):
        mx = mx if mx > x[i] else x[i]
    if mx < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return zero
    fnmax = np.float32(nmax)
    iscale = fnmax / mx
    for i in range(n):
        L[i] = nearest_int(iscale * x[i]) & 0xFF
    scale = np.float32(1.0) / iscale
    best = zero
    for i in range(n):
        diff = x[i] - scale * np.float32(L[i])
        best += qw[i] * diff * diff
    for step in range(-4, 5):
        if step == 0:
            continue
        iscale_is = (np.float32(0.1) * np.float32(step) + fnmax) / mx
        scale_is = np.float32(1.0) / iscale_is
        mse = zero
        for i in range(n):
            lf = np.float32(min(nmax, nearest_int(iscale_is * x[i])))
            diff = x[i] - scale_is * lf
            mse += qw[i] * diff * diff
        if mse < best:
            best = mse
            iscale = iscale_is
    sumlx = zero
    suml2 = zero
    for i in range(n):
        l = min(nmax, nearest_int(iscale * x[i]))
        L[i] = l & 0xFF
        lf = np.float32(l)
        sumlx += qw[i] * x[i] * lf
        suml2 += qw[i] * lf * lf
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            w = qw[i]
            Li = np.float32(L[i])
            slx = sumlx - w * x[i] * Li
            sl2 = suml2 - w * Li * Li
            if slx > zero and sl2 > zero:
                new_l = min(nmax, nearest_int(x[i] * sl2 / slx))
                if new_l != L[i]:
                    nl = np.float32(new_l)
                    slx += w * x[i] * nl
                    sl2 += w * nl * nl
                    if slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i] = new_l & 0xFF
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    return sumlx / suml2 if suml2 > zero else zero
