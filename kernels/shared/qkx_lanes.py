"""The make_qkx2/qkx3 scale-and-min search of the numba CPU kernels (k_scale_min/cpu,
legacy/cpu_lanes), many sub-blocks at once, float32 throughout, sums in C order (make_qp_quants
is in k_scale_min/superblock_ops).

`search_lanes` runs many sub-blocks side by side: arrays are laid out (element, lane) with one
lane per sub-block and the innermost loops walk the lanes, so LLVM vectorizes across independent
sub-blocks while each lane's reduction keeps ggml's order. No fastmath: no reassociation and no
FMA contraction (ggml's reference is built without FMA).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .cpu_bits import nearest_int32

JIT = dict(cache=True, error_model="numpy", boundscheck=False)


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
