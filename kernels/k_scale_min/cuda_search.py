"""Device functions of the numba-cuda K-quant kernels (k_scale_min/cuda): the make_qkx2/qkx3 scale
and min search, one sub-block per thread (make_qp_quants, rounding and fp16 are shared with the
CPU kernels: superblock_ops.py, shared/ops.py).

FMA: NVVM fuses a*b+c into one fma by default (numba-cuda exposes no switch for it), and ggml's
reference is built without FMA, so every float product here goes through `fmul` (mul.rn, which
neither NVVM nor ptxas contracts); divisions that NVVM would turn into a multiply go through
`fdiv`. Division and sqrt are IEEE (no fastmath), denormals are kept.
Under NUMBA_ENABLE_CUDASIM=1 the same code runs in numba's simulator on numpy scalars.
"""
from __future__ import annotations

import numpy as np
from numba import config, cuda, float32

from ..shared.cuda_common import load_cuda_twin

nearest_int = load_cuda_twin("shared.ops").nearest_int   # ggml's rounding: one source with the CPU

SIM = bool(config.ENABLE_CUDASIM)
ZERO = np.float32(0.0)
ONE = np.float32(1.0)

if SIM:
    def fmul(a, b):
        return np.float32(np.float32(a) * np.float32(b))

    def fdiv(a, b):
        return np.float32(np.float32(a) / np.float32(b))
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True, inline=True)
    def fmul(a, b):
        return libdevice.fmul_rn(a, b)

    @cuda.jit(device=True, inline=True)
    def fdiv(a, b):   # NVVM turns x/256 into a plain mul that ptxas may fuse into an fma
        return libdevice.fdiv_rn(a, b)


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
