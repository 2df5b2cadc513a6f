"""make_q3_quants(16, nmax, x, L, do_rmse=true) for many 16-weight sub-blocks side by side (numba
CPU): Q3_K's search without an imatrix. Layout as in shared/qx_lanes.py: X[i, lane] is weight i of
sub-block `lane`, inner loops walk the lanes so LLVM vectorizes across sub-blocks.

ggml refines each sub-block for up to 5 passes and stops a sub-block after a pass that changed
nothing; about 4 in 5 sub-blocks stop after the first. A pass that changes nothing leaves the
state as it was, so further passes would be no-ops: after each pass only the lanes that changed
are gathered into a compact batch for the next one, and the finished ones are written back.
The levels are kept as floats (qx_lanes.level: round half to even by adding 1.5*2**23, exact for
|v| <= 2**22), so every lane loop is float-only and runs at full SIMD width; the refinement's
x*sl2/slx is checked against that range. The compacted batches are padded with zero lanes to a
multiple of 16 so they have no scalar tail either.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..shared.ops import F, GROUP_MAX_EPS
from ..shared.qx_lanes import first_absmax_lanes, level

MAX_EXACT = F(4194303.0)       # |v| up to here: level() is ggml's nearest_int
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _refine(X, L, sumlx, suml2, nmax, nl, took):
    """One refinement pass over lanes 0..nl-1 (L holds the levels as floats); took[l] = 1 where
    lane l changed a level. Returns False when some x*sl2/slx fell outside level()'s exact range."""
    lo = F(-nmax)
    hi = F(nmax - 1)
    exact = True
    for l in range(nl):
        took[l] = 0
    for i in range(X.shape[0]):
        for l in range(nl):
            x = X[i, l]
            w = x * x
            li = L[i, l]
            slx = sumlx[l] - (w * x) * li
            sl2 = suml2[l] - (w * li) * li
            v = x * sl2 / slx
            ok = abs(v) <= MAX_EXACT
            pos = slx > 0
            exact = exact & (ok | (not pos))   # bitwise: no branches in the lane loop
            fq = level(v if ok else F(0), lo, hi)
            slx2 = slx + (w * x) * fq
            sl22 = sl2 + (w * fq) * fq
            take = pos & (fq != li) & (sl22 > 0) & \
                (slx2 * slx2 * suml2[l] > sumlx[l] * sumlx[l] * sl22)
            L[i, l] = fq if take else li
            sumlx[l] = slx2 if take else sumlx[l]
            suml2[l] = sl22 if take else suml2[l]
            took[l] |= np.int32(take)
    return exact


@njit(inline="always", **_JIT)
def _move(Ls, sxs, s2s, s, Ld, sxd, s2d, d):
    """Copy a lane's levels and sums from lane s of (Ls, sxs, s2s) to lane d of (Ld, sxd, s2d)."""
    for i in range(Ls.shape[0]):
        Ld[i, d] = Ls[i, s]
    sxd[d] = sxs[s]
    s2d[d] = s2s[s]


@njit(inline="always", **_JIT)
def _move_x(Xs, s, Xd, d):
    for i in range(Xs.shape[0]):
        Xd[i, d] = Xs[i, s]


@njit(**_JIT)
def _pad(Xc, Lc, sxc, s2c, na):
    """Zero lanes na.. up to the next multiple of 16, the width the lane loops run at without a
    scalar tail. A zero lane never takes a level (its slx is 0) and never trips `exact`.
    Returns the padded count."""
    npad = min((na + 15) // 16 * 16, Xc.shape[1])
    for k in range(na, npad):
        for i in range(Xc.shape[0]):
            Xc[i, k] = F(0)
            Lc[i, k] = F(0)
        sxc[k] = F(0)
        s2c[k] = F(0)
    return npad


@njit(**_JIT)
def q3_lanes(X, nmax, nl, L, scale, work, fwork, iwork):
    """Search lanes 0..nl-1: float32 levels L[i, lane] in [0, 2*nmax), scale per lane.
    Scratch: work float32 (7, lanes), fwork float32 (3, rows, lanes), iwork int32 (2, lanes).
    Returns False when a refinement value left nearest_int's exact range: the caller then redoes
    the batch with the scalar code."""
    mx, isc, sumlx, suml2, amax, sxc, s2c = work[0], work[1], work[2], work[3], work[4], \
        work[5], work[6]
    Lf, Xc, Lc = fwork[0], fwork[1], fwork[2]
    idx, took = iwork[0], iwork[1]
    lo = F(-nmax)
    hi = F(nmax - 1)
    first_absmax_lanes(X, nl, amax, mx)
    for l in range(nl):
        mx[l] = F(1) if amax[l] < GROUP_MAX_EPS else mx[l]
        isc[l] = F(-nmax) / mx[l]
        sumlx[l] = F(0)
        suml2[l] = F(0)
    for i in range(X.shape[0]):
        for l in range(nl):
            x = X[i, l]
            fl = level(isc[l] * x, lo, hi)
            Lf[i, l] = fl
            w = x * x
            sumlx[l] += (w * x) * fl
            suml2[l] += (w * fl) * fl
    exact = _refine(X, Lf, sumlx, suml2, nmax, nl, took)    # pass 1: every lane
    na = 0
    for l in range(nl):                                      # the lanes that changed, branch-free
        idx[na] = l
        na += took[l]
    for k in range(na):                                      # gathered into a compact batch
        _move_x(X, idx[k], Xc, k)
        _move(Lf, sumlx, suml2, idx[k], Lc, sxc, s2c, k)
    for _ in range(4):                                       # passes 2..5: active lanes only
        if na == 0:
            break
        exact = exact & _refine(Xc, Lc, sxc, s2c, nmax, _pad(Xc, Lc, sxc, s2c, na), took)
        m = 0
        for k in range(na):
            if took[k]:                                      # still active: keep, compacted
                if m != k:
                    idx[m] = idx[k]
                    _move_x(Xc, k, Xc, m)
                    _move(Lc, sxc, s2c, k, Lc, sxc, s2c, m)
                m += 1
            else:                                            # finished: write back
                _move(Lc, sxc, s2c, k, Lf, sumlx, suml2, idx[k])
        na = m
    for k in range(na):                                      # changed in pass 5: write back
        _move(Lc, sxc, s2c, k, Lf, sumlx, suml2, idx[k])
    for l in range(nl):
        z = amax[l] < GROUP_MAX_EPS
        scale[l] = F(0) if z else (sumlx[l] / suml2[l] if suml2[l] > 0 else F(0))
        isc[l] = F(0) if z else F(nmax)                      # the level offset (ggml: L = 0)
    for i in range(X.shape[0]):
        for l in range(nl):
            L[i, l] = Lf[i, l] + isc[l]
    return exact
