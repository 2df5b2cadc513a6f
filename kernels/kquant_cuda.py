"""numba-cuda kernels for Q2_K, Q4_K and Q5_K, byte-identical to ggml_quantize_chunk.

Two launches per tensor: `_search` runs one thread per sub-block (the make_qkx2/qkx3 scale and
min search of kquant_search, scalar C order); `_finish` runs one thread per super-block (the 6- or
4-bit scale quantization, fp16 super-scales, requantization and byte packing).

FMA: NVVM fuses a*b+c into one fma by default (numba-cuda exposes no switch for it), and ggml's
reference is built without FMA, so every float product here goes through `fmul` (mul.rn, which
NVVM never contracts). Division and sqrt are IEEE (no fastmath), denormals are kept.
Under NUMBA_ENABLE_CUDASIM=1 the same kernels run in numba's simulator (plain numpy scalars).
"""
from __future__ import annotations

import math

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
    df = fp16_to_f32(d16)
    dminf = fp16_to_f32(dmin16)
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
    df = fp16_to_f32(d16)
    dminf = fp16_to_f32(dmin16)
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
    x = cuda.to_device(np.ascontiguousarray(rows.reshape(-1, 256)))
    S = x.shape[0]
    im = cuda.to_device(imatrix if has_im else np.zeros(256, np.float32))
    scales = cuda.device_array(S * G, np.float32)
    mins = cuda.device_array(S * G, np.float32)
    sws = cuda.device_array(S * G, np.float32)
    Lg = cuda.device_array((S * G, 256 // G), np.int32)
    out = cuda.device_array((S, type_size), np.uint8)
    _search[(S * G + _THREADS - 1) // _THREADS, _THREADS](
        x, im, has_im, G, nmax, np.float32(rmin), np.float32(rdelta), nstep, use_mad,
        qtype != "Q2_K", scales, mins, sws, Lg)
    blocks = (S + _THREADS - 1) // _THREADS
    if qtype == "Q2_K":
        _finish_q2[blocks, _THREADS](x, has_im, scales, mins, sws, Lg, out)
    else:
        _finish_q45[blocks, _THREADS](x, has_im, nmax, scales, mins, sws, Lg, out)
    return out.copy_to_host().reshape(n_rows, -1)
