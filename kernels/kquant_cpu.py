"""numba CPU kernels for Q2_K, Q4_K and Q5_K, byte-identical to ggml_quantize_chunk.

Same algorithm as the numpy spec (kquant_search, q4_k, q5_k, q2_k), float32 throughout and every
sum accumulated in C order. The SIMD comes from running the sub-blocks of a batch of super-blocks
side by side: scratch arrays are laid out (element, lane) with one lane per sub-block, and the
innermost loops walk the lanes, so LLVM vectorizes across independent sub-blocks while each
lane's reduction keeps ggml's order. Threads (prange) take batches of super-blocks.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, set_num_threads, types
from numba.extending import intrinsic

F32 = np.float32
MAGIC = np.float32(12582912.0)
GROUP_MAX_EPS = np.float32(1e-15)
MANT = np.int32(0x007FFFFF)
HALF = np.int32(0x00400000)
LANES = 64                                   # sub-blocks searched side by side per batch
# kind -> (type_size, sub-block size, nmax, rmin, rdelta, nstep, use_mad) of the no-imatrix path
KINDS = {"Q4_K": 0, "Q5_K": 1, "Q2_K": 2}
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


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


@njit(**_JIT)
def nearest_int(v):
    return (f32_bits(v + MAGIC) & MANT) - HALF


@njit(**_JIT)
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


@njit(**_JIT)
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


@njit(**_JIT)
def _level(v, nmax, step_form):
    """The level make_qkx2/qkx3 give a scaled value v: the first guess and make_qkx2's steps
    clamp nearest_int(v); make_qkx3's steps take v > 0 ? nearest_int(MIN(v, nmax)) : 0."""
    if step_form:
        return nearest_int(v if v < np.float32(nmax) else np.float32(nmax)) if v > 0 else 0
    return min(max(nearest_int(v), 0), nmax)


@njit(**_JIT)
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


@njit(**_JIT)
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


@njit(**_JIT)
def _superblock_q45(x, s, out, lane0, xt, L, scale_out, min_out, swl, has_im, nmax, clamp_qp,
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
        d = make_qp_quants(sc_f, 63, sw_f, ls)
        dmin = make_qp_quants(mn_f, 63, sw_f, lm)
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
    df = fp16_to_f32(d16)
    dminf = fp16_to_f32(dmin16)
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
        d = make_qp_quants(sc_f, 15, sw_f, ls)
        dmin = make_qp_quants(mn_f, 15, sw_f, lm)
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
    df = fp16_to_f32(d16)
    dminf = fp16_to_f32(dmin16)
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
def _kernel(x, imatrix, has_im, kind, out, nthreads):
    """x: (S, 256) super-blocks; imatrix: (n_per_row,) or dummy; out: (S, type_size) uint8."""
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
            for b in range(nsb):
                for g in range(G):
                    for i in range(n):
                        xt[i, b * G + g] = x[s0 + b, g * n + i]
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
                    _superblock_q45(x, s0 + b, out, b * G, xt, L, scale_out, min_out, swl, has_im,
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
    try:
        _kernel(x, im, imatrix is not None, KINDS[qtype], out, get_num_threads())
    finally:
        set_num_threads(old)
    return out.reshape(n_rows, -1)
