"""make_q3_quants(16, nmax, x, L, do_rmse=true) for many 16-weight sub-blocks side by side (numba
CPU): Q3_K's search without an imatrix. Layout as in qx_lanes.py: X[i, lane] is weight i of
sub-block `lane`, inner loops walk the lanes so LLVM vectorizes across sub-blocks.

ggml refines each sub-block for up to 5 passes and stops a sub-block after a pass that changed
nothing; about 4 in 5 sub-blocks stop after the first. A pass that changes nothing leaves the
state as it was, so further passes would be no-ops: after each pass only the lanes that changed
are gathered into a compact batch for the next one, and the finished ones are written back.
Inside a lane |iscale * x| <= nmax + 1, where `int(v + 1.5*2**23) - 1.5*2**23` is exactly
ggml's nearest_int (and vectorizes, unlike the mantissa read); the refinement's x*sl2/slx is
checked against that range.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .ops import F, GROUP_MAX_EPS
from .qx_lanes import first_absmax_lanes

MAGIC = np.float32(12582912.0)
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _refine(X, L, sumlx, suml2, nmax, nl, took):
    """One refinement pass over lanes 0..nl-1; took[l] = 1 where lane l changed a level.
    Returns False when some x*sl2/slx fell outside nearest_int's exact range (|v| > 2**22, NaN)."""
    exact = True
    for l in range(nl):
        took[l] = 0
    for i in range(X.shape[0]):
        for l in range(nl):
            x = X[i, l]
            w = x * x
            li = F(L[i, l])
            slx = sumlx[l] - (w * x) * li
            sl2 = suml2[l] - (w * li) * li
            v = x * sl2 / slx
            ok = abs(v) <= F(4194303.0)
            pos = slx > 0
            exact = exact & (ok | (not pos))   # bitwise: no branches in the lane loop
            q = np.int32(F((v if ok else F(0)) + MAGIC)) - np.int32(12582912)
            q = max(min(q, np.int32(nmax - 1)), np.int32(-nmax))
            fq = F(q)
            slx2 = slx + (w * x) * fq
            sl22 = sl2 + (w * fq) * fq
            take = pos & (q != L[i, l]) & (sl22 > 0) & \
                (slx2 * slx2 * suml2[l] > sumlx[l] * sumlx[l] * sl22)
            L[i, l] = q if take else L[i, l]
            sumlx[l] = slx2 if take else sumlx[l]
            suml2[l] = sl22 if take else suml2[l]
            took[l] |= np.int32(take)
    return exact


@njit(**_JIT)
def _move(Ls, sxs, s2s, s, Ld, sxd, s2d, d):
    """Copy a lane's levels and sums from lane s of (Ls, sxs, s2s) to lane d of (Ld, sxd, s2d)."""
    for i in range(Ls.shape[0]):
        Ld[i, d] = Ls[i, s]
    sxd[d] = sxs[s]
    s2d[d] = s2s[s]


@njit(**_JIT)
def _move_x(Xs, s, Xd, d):
    for i in range(Xs.shape[0]):
        Xd[i, d] = Xs[i, s]


@njit(**_JIT)
def q3_lanes(X, nmax, nl, L, scale, work, Xc, Lc, iwork):
    """Search lanes 0..nl-1: L[i, lane] in [0, 2*nmax), scale per lane. Scratch: work float32
    (7, lanes), Xc/Lc like X/L, iwork int32 (2, lanes). Returns False when a refinement value
    left nearest_int's exact range: the caller then redoes the batch with the scalar code."""
    mx, isc, sumlx, suml2, amax, sxc, s2c = work[0], work[1], work[2], work[3], work[4], \
        work[5], work[6]
    idx, took = iwork[0], iwork[1]
    first_absmax_lanes(X, nl, amax, mx)
    for l in range(nl):
        mx[l] = F(1) if amax[l] < GROUP_MAX_EPS else mx[l]
        isc[l] = F(-nmax) / mx[l]
        sumlx[l] = F(0)
        suml2[l] = F(0)
    for i in range(X.shape[0]):
        for l in range(nl):
            x = X[i, l]
            q = np.int32(F(isc[l] * x + MAGIC)) - np.int32(12582912)
            q = max(min(q, np.int32(nmax - 1)), np.int32(-nmax))
            L[i, l] = q
            w = x * x
            fl = F(q)
            sumlx[l] += (w * x) * fl
            suml2[l] += (w * fl) * fl
    exact = _refine(X, L, sumlx, suml2, nmax, nl, took)     # pass 1: every lane
    na = 0
    for l in range(nl):                                      # gather the lanes that changed
        if took[l]:
            idx[na] = l
            _move_x(X, l, Xc, na)
            _move(L, sumlx, suml2, l, Lc, sxc, s2c, na)
            na += 1
    for _ in range(4):                                       # passes 2..5: active lanes only
        if na == 0:
            break
        exact = exact & _refine(Xc, Lc, sxc, s2c, nmax, na, took)
        m = 0
        for k in range(na):
            if took[k]:                                      # still active: keep, compacted
                if m != k:
                    idx[m] = idx[k]
                    _move_x(Xc, k, Xc, m)
                    _move(Lc, sxc, s2c, k, Lc, sxc, s2c, m)
                m += 1
            else:                                            # finished: write back
                _move(Lc, sxc, s2c, k, L, sumlx, suml2, idx[k])
        na = m
    for k in range(na):                                      # changed in pass 5: write back
        _move(Lc, sxc, s2c, k, L, sumlx, suml2, idx[k])
    for l in range(nl):
        z = amax[l] < GROUP_MAX_EPS
        scale[l] = F(0) if z else (sumlx[l] / suml2[l] if suml2[l] > 0 else F(0))
        for i in range(X.shape[0]):
            L[i, l] = 0 if z else L[i, l] + nmax
    return exact
