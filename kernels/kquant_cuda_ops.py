"""Device functions of the numba-cuda K-quant kernels (kquant_cuda): ggml's rounding helpers,
fp16 conversion, and the make_qkx2/qkx3 and make_qp_quants searches, one sub-block per thread.

FMA: NVVM fuses a*b+c into one fma by default (numba-cuda exposes no switch for it), and ggml's
reference is built without FMA, so every float product here goes through `fmul` (mul.rn, which
neither NVVM nor ptxas contracts); divisions that NVVM would turn into a multiply go through
`fdiv`. Division and sqrt are IEEE (no fastmath), denormals are kept.
Under NUMBA_ENABLE_CUDASIM=1 the same code runs in numba's simulator on numpy scalars.
"""
from __future__ import annotations

import numpy as np
from numba import config, cuda, float32, int32

SIM = bool(config.ENABLE_CUDASIM)
MAGIC = np.float32(12582912.0)
EPS = np.float32(1e-15)
ZERO = np.float32(0.0)
ONE = np.float32(1.0)

if SIM:
    def fmul(a, b):
        return np.float32(np.float32(a) * np.float32(b))

    def fdiv(a, b):
        return np.float32(np.float32(a) / np.float32(b))

    def f32_bits(v):
        return int(np.float32(v).view(np.int32))

    def bits_f32(i):
        return np.int32(i).view(np.float32)
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True, inline=True)
    def fmul(a, b):
        return libdevice.fmul_rn(a, b)

    @cuda.jit(device=True, inline=True)
    def fdiv(a, b):   # NVVM turns x/256 into a plain mul that ptxas may fuse into an fma
        return libdevice.fdiv_rn(a, b)

    @cuda.jit(device=True, inline=True)
    def f32_bits(v):
        return libdevice.float_as_int(v)

    @cuda.jit(device=True, inline=True)
    def bits_f32(i):
        return libdevice.int_as_float(i)


@cuda.jit(device=True)
def nearest_int(v):
    return (f32_bits(float32(v + MAGIC)) & 0x007FFFFF) - 0x00400000


@cuda.jit(device=True)
def fp16_bits(f):
    """float32 -> IEEE half bits, round to nearest even."""
    b = f32_bits(f) & 0xFFFFFFFF
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


@cuda.jit(device=True)
def fp16_to_f32(h):
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        v = fmul(float32(m), float32(2.0 ** -24))
    elif e == 31:
        v = bits_f32(int32(0x7F800000 | (m << 13)))
    else:
        v = bits_f32(int32(((e + 112) << 23) | (m << 13)))
    return -v if h & 0x8000 else v


@cuda.jit(device=True)
def qkx_search(x, w, L, Laux, n, nmax, rmin, rdelta, nstep, use_mad, qkx3):
    """make_qkx2_quants / make_qkx3_quants on one sub-block; returns (scale, the_min)."""
    fnmax = float32(nmax)
    mn = x[0]
    mx = x[0]
    sum_w = w[0]
    sum_x = fmul(sum_w, x[0])
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        sum_w += w[i]
        sum_x += fmul(w[i], x[i])
    if mn > ZERO:
        mn = ZERO
    if (qkx3 and mx <= mn) or ((not qkx3) and mx == mn):
        for i in range(n):
            L[i] = 0
        return ZERO, -mn
    iscale = fnmax / (mx - mn)
    scale = ONE / iscale
    best = ZERO
    for i in range(n):
        l = min(max(nearest_int(fmul(iscale, x[i] - mn)), 0), nmax)
        L[i] = l
        d = fmul(scale, float32(l)) + mn - x[i]
        d = abs(d) if use_mad else fmul(d, d)
        best += fmul(w[i], d)
    for step in range(nstep + 1):
        iscale = (rmin + fmul(rdelta, float32(step)) + fnmax) / (mx - mn)
        sl = ZERO
        sl2 = ZERO
        sxl = ZERO
        for i in range(n):
            v = fmul(iscale, x[i] - mn)
            if qkx3:
                l = nearest_int(v if v < fnmax else fnmax) if v > ZERO else 0
            else:
                l = min(max(nearest_int(v), 0), nmax)
            Laux[i] = l
            lf = float32(l)
            wl = fmul(w[i], lf)
            sl += wl
            sl2 += fmul(wl, lf)
            sxl += fmul(wl, x[i])
        D = fmul(sum_w, sl2) - fmul(sl, sl)
        if D > ZERO:
            ts = (fmul(sum_w, sxl) - fmul(sum_x, sl)) / D
            tm = (fmul(sl2, sum_x) - fmul(sl, sxl)) / D
            if tm > ZERO:
                tm = ZERO
                ts = sxl / sl2
            cur = ZERO
            for i in range(n):
                d = fmul(ts, float32(Laux[i])) + tm - x[i]
                d = abs(d) if use_mad else fmul(d, d)
                cur += fmul(w[i], d)
            if cur < best:
                for i in range(n):
                    L[i] = Laux[i]
                best = cur
                scale = ts
                mn = tm
    return scale, -mn


@cuda.jit(device=True)
def make_qp_quants(x, n, nmax, qw, L):
    mx = ZERO
    for i in range(n):
        mx = mx if mx > x[i] else x[i]
    if mx < EPS:
        for i in range(n):
            L[i] = 0
        return ZERO
    fnmax = float32(nmax)
    iscale = fnmax / mx
    for i in range(n):
        L[i] = nearest_int(fmul(iscale, x[i])) & 0xFF
    scale = ONE / iscale
    best = ZERO
    for i in range(n):
        diff = x[i] - fmul(scale, float32(L[i]))
        best += fmul(fmul(qw[i], diff), diff)
    for step in range(-4, 5):
        if step != 0:
            iscale_is = (fmul(float32(0.1), float32(step)) + fnmax) / mx
            scale_is = ONE / iscale_is
            mse = ZERO
            for i in range(n):
                lf = float32(min(nmax, nearest_int(fmul(iscale_is, x[i]))))
                diff = x[i] - fmul(scale_is, lf)
                mse += fmul(fmul(qw[i], diff), diff)
            if mse < best:
                best = mse
                iscale = iscale_is
    sumlx = ZERO
    suml2 = ZERO
    for i in range(n):
        l = min(nmax, nearest_int(fmul(iscale, x[i])))
        L[i] = l & 0xFF
        lf = float32(l)
        sumlx += fmul(fmul(qw[i], x[i]), lf)
        suml2 += fmul(fmul(qw[i], lf), lf)
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            w = qw[i]
            Li = float32(L[i])
            slx = sumlx - fmul(fmul(w, x[i]), Li)
            sl2 = suml2 - fmul(fmul(w, Li), Li)
            if slx > ZERO and sl2 > ZERO:
                new_l = min(nmax, nearest_int(fmul(x[i], sl2) / slx))
                if new_l != L[i]:
                    nl = float32(new_l)
                    slx += fmul(fmul(w, x[i]), nl)
                    sl2 += fmul(fmul(w, nl), nl)
                    if fmul(fmul(slx, slx), suml2) > fmul(fmul(sumlx, sumlx), sl2):
                        L[i] = new_l & 0xFF
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    return sumlx / suml2 if suml2 > ZERO else ZERO
