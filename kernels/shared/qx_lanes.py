"""make_qx_quants(16, nmax, x, L, rmse_type=1, w) for many 16-weight sub-blocks side by side
(numba CPU), so LLVM vectorizes across sub-blocks while each sub-block's sums keep ggml's order.

The sub-blocks are laid out transposed, X[i, lane] = weight i of sub-block `lane`; every inner
loop walks the lanes. Instead of L, the search returns per lane the scale and the iscale whose
rounding gave L (ggml rewrites L from the same iscale each time it finds a better scale), so
L[i] = nmax + clamp(nearest_int(iscale * x[i])) can be recomputed when it is needed. For lanes
that are all zero (amax < GROUP_MAX_EPS) `zero[lane]` is set and ggml's L is 0.
Inside a non-zero lane |iscale * x| <= nmax + 1, where `int(v + 1.5*2**23) - 1.5*2**23` is
exactly ggml's nearest_int (and vectorizes, unlike the mantissa read).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .ops import F, GROUP_MAX_EPS

MAGIC = np.float32(12582912.0)
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(inline="always", **_JIT)
def level(v, lo, hi):
    """clamp(nearest_int(v), lo, hi) as a float32, for |v| <= 2**22: (v + 1.5*2**23) - 1.5*2**23
    is v rounded half to even, exactly. Float-only, so the lane loops stay 8/16 floats wide
    (an int round trip is widened to int64 by numba)."""
    r = (v + MAGIC) - MAGIC
    r = lo if r < lo else r
    return hi if r > hi else r


@njit(**_JIT)
def _sums(X, W, iscale, nmax, nl, sumlx, suml2):
    lo = F(-nmax)
    hi = F(nmax - 1)
    for l in range(nl):
        sumlx[l] = F(0)
        suml2[l] = F(0)
    for i in range(X.shape[0]):
        for l in range(nl):
            x = X[i, l]
            fl = level(iscale[l] * x, lo, hi)
            w = W[i, l]
            sumlx[l] += (w * x) * fl
            suml2[l] += (w * fl) * fl


@njit(**_JIT)
def first_absmax_lanes(X, nl, amax, mx):
    """Per lane, ggml's scan for the largest |x|: amax = that |x|, mx = the first x with it."""
    for l in range(nl):
        mx[l] = F(0)
        amax[l] = F(0)
    for i in range(X.shape[0]):
        for l in range(nl):
            a = abs(X[i, l])
            c = a > amax[l]
            mx[l] = X[i, l] if c else mx[l]
            amax[l] = a if c else amax[l]


@njit(**_JIT)
def qx_lanes(X, W, nmax, nl, scale, ibest, zero, work):
    """Search lanes 0..nl-1; results in scale, ibest (float32) and zero (bool) per lane.
    `work` is float32 scratch of shape (6, lanes)."""
    mx, isc, sumlx, suml2, best = work[0], work[1], work[2], work[3], work[4]
    amax = work[5]
    first_absmax_lanes(X, nl, amax, mx)
    for l in range(nl):
        z = amax[l] < GROUP_MAX_EPS
        zero[l] = z
        mx[l] = F(1) if z else mx[l]        # keeps the dead lanes finite
        isc[l] = F(-nmax) / mx[l]
    _sums(X, W, isc, nmax, nl, sumlx, suml2)
    for l in range(nl):
        scale[l] = sumlx[l] / suml2[l] if suml2[l] != 0 else F(0)
        best[l] = scale[l] * sumlx[l]
        ibest[l] = isc[l]
    for step in range(-9, 10):
        if step == 0:
            continue
        for l in range(nl):
            isc[l] = -(F(nmax) + F(0.1) * F(step)) / mx[l]
        _sums(X, W, isc, nmax, nl, sumlx, suml2)
        for l in range(nl):
            better = (suml2[l] > 0) & (sumlx[l] * sumlx[l] > best[l] * suml2[l])
            s = sumlx[l] / suml2[l]
            scale[l] = s if better else scale[l]
            best[l] = s * sumlx[l] if better else best[l]
            ibest[l] = isc[l] if better else ibest[l]
    for l in range(nl):
        if zero[l]:
            scale[l] = F(0)
