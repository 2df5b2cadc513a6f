"""The scale/min searches of llama.cpp's K-quants (ggml-quants.c), in numpy: the readable spec.

Every function works on G independent groups at once (arrays of shape (G, n)) but walks the
n elements of a group in C order, one element at a time, so float32 sums are accumulated in
exactly the order ggml accumulates them (numpy's own `sum` is pairwise and would differ).
Integers that C stores into `uint8_t` are masked with 0xFF here, so even odd inputs wrap alike.
"""
from __future__ import annotations

import numpy as np

# ggml's rounding, fp16 conversion and C-order sums: the same helpers as the other types
from .reference_ops import F32, GROUP_MAX_EPS, fp16_bits, nearest_int, seq_sum  # noqa: F401


def _err(diff: np.ndarray, use_mad: bool) -> np.ndarray:
    return np.abs(diff) if use_mad else diff * diff


def _min_max_sums(x, w):
    """First loop shared by make_qkx2/qkx3: running min/max and weighted sums, in C order."""
    mn = x[:, 0].copy()
    mx = x[:, 0].copy()
    sum_w = w[:, 0].copy()
    sum_x = sum_w * x[:, 0]
    for i in range(1, x.shape[1]):
        xi, wi = x[:, i], w[:, i]
        mn = np.where(xi < mn, xi, mn)
        mx = np.where(xi > mx, xi, mx)
        sum_w = sum_w + wi
        sum_x = sum_x + wi * xi
    mn = np.where(mn > 0, F32(0), mn)
    return mn, mx, sum_w, sum_x


def make_qkx_quants(x, w, nmax, rmin, rdelta, nstep, use_mad, qkx3):
    """make_qkx2_quants (qkx3=False) / make_qkx3_quants (qkx3=True) for G groups.

    Returns (scale (G,), the_min (G,), L (G, n) int32 levels in 0..nmax)."""
    x = np.asarray(x, F32)
    w = np.asarray(w, F32)
    n = x.shape[1]
    fnmax = F32(nmax)
    with np.errstate(all="ignore"):
        mn, mx, sum_w, sum_x = _min_max_sums(x, w)
        mn0 = mn
        flat = (mx <= mn) if qkx3 else (mx == mn)
        iscale = fnmax / (mx - mn)
        scale = F32(1) / iscale
        L = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None])), 0, nmax)
        Lf = L.astype(F32)
        best = np.zeros_like(mn)
        for i in range(n):
            best = best + w[:, i] * _err(scale * Lf[:, i] + mn - x[:, i], use_mad)
        for step in range(nstep + 1):
            iscale = (F32(rmin) + F32(rdelta) * F32(step) + fnmax) / (mx - mn)
            v = iscale[:, None] * (x - mn[:, None])
            if qkx3:   # current ggml: v > 0 ? nearest_int(MIN(v, nmax)) : 0
                Laux = np.where(v > 0, nearest_int(np.where(v < fnmax, v, fnmax)), 0)
            else:
                Laux = np.clip(nearest_int(v), 0, nmax)
            La = Laux.astype(F32)
            sum_l = np.zeros_like(mn)
            sum_l2 = np.zeros_like(mn)
            sum_xl = np.zeros_like(mn)
            for i in range(n):
                wl = w[:, i] * La[:, i]
                sum_l = sum_l + wl
                sum_l2 = sum_l2 + wl * La[:, i]
                sum_xl = sum_xl + wl * x[:, i]
            D = sum_w * sum_l2 - sum_l * sum_l
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            pos = this_min > 0
            this_min = np.where(pos, F32(0), this_min)
            this_scale = np.where(pos, sum_xl / sum_l2, this_scale)
            cur = np.zeros_like(mn)
            for i in range(n):
                cur = cur + w[:, i] * _err(this_scale * La[:, i] + this_min - x[:, i], use_mad)
            better = (D > 0) & (cur < best)
            L = np.where(better[:, None], Laux, L)
            best = np.where(better, cur, best)
            scale = np.where(better, this_scale, scale)
            mn = np.where(better, this_min, mn)
    # A flat group: all levels 0, scale 0, min = -(clamped) min of the data.
    scale = np.where(flat, F32(0), scale).astype(F32)
    the_min = (-np.where(flat, mn0, mn)).astype(F32)
    L = np.where(flat[:, None], 0, L).astype(np.int32)
    return scale, the_min, L


def make_qp_quants(x, nmax, qw):
    """make_qp_quants for G groups of n positive values with weights qw.

    Returns (scale (G,), L (G, n) int32 as stored in uint8)."""
    x = np.asarray(x, F32)
    qw = np.asarray(qw, F32)
    G, n = x.shape
    fnmax = F32(nmax)
    mx = np.zeros(G, F32)
    for i in range(n):
        mx = np.where(mx > x[:, i], mx, x[:, i])
    zero = mx < GROUP_MAX_EPS
    with np.errstate(all="ignore"):
        iscale = fnmax / mx
        L = nearest_int(iscale[:, None] * x) & 0xFF
        scale = F32(1) / iscale
        best = np.zeros(G, F32)
        for i in range(n):
            diff = x[:, i] - scale * L[:, i].astype(F32)
            best = best + qw[:, i] * diff * diff
        for step in (-4, -3, -2, -1, 1, 2, 3, 4):
            iscale_is = (F32(0.1) * F32(step) + fnmax) / mx
            scale_is = F32(1) / iscale_is
            mse = np.zeros(G, F32)
            for i in range(n):
                li = np.minimum(nmax, nearest_int(iscale_is * x[:, i])).astype(F32)
                diff = x[:, i] - scale_is * li
                mse = mse + qw[:, i] * diff * diff
            better = mse < best
            best = np.where(better, mse, best)
            iscale = np.where(better, iscale_is, iscale)
        sumlx = np.zeros(G, F32)
        suml2 = np.zeros(G, F32)
        for i in range(n):
            li = np.minimum(nmax, nearest_int(iscale * x[:, i]))
            L[:, i] = li & 0xFF
            lf = li.astype(F32)
            sumlx = sumlx + qw[:, i] * x[:, i] * lf
            suml2 = suml2 + qw[:, i] * lf * lf
        active = np.ones(G, bool)
        for _ in range(5):
            changed = np.zeros(G, bool)
            for i in range(n):
                w, xi = qw[:, i], x[:, i]
                Li = L[:, i].astype(F32)
                slx = sumlx - w * xi * Li
                sl2 = suml2 - w * Li * Li
                new_l = np.minimum(nmax, nearest_int(xi * sl2 / slx))
                nl = new_l.astype(F32)
                try_it = active & (slx > 0) & (sl2 > 0) & (new_l != L[:, i])
                slx = slx + w * xi * nl
                sl2 = sl2 + w * nl * nl
                take = try_it & (slx * slx * suml2 > sumlx * sumlx * sl2)
                L[:, i] = np.where(take, new_l & 0xFF, L[:, i])
                sumlx = np.where(take, slx, sumlx)
                suml2 = np.where(take, sl2, suml2)
                changed |= take
            active &= changed
            if not active.any():
                break
        out = np.where(suml2 > 0, sumlx / suml2, F32(0))
    out = np.where(zero, F32(0), out).astype(F32)
    L = np.where(zero[:, None], 0, L).astype(np.int32)
    return out, L


def seq_sum_sq(x: np.ndarray) -> np.ndarray:
    """sum of x*x along axis 1, accumulated left to right in float32 like the C loop."""
    s = np.zeros(x.shape[0], F32)
    for i in range(x.shape[1]):
        s = s + x[:, i] * x[:, i]
    return s


def running_max(v: np.ndarray) -> np.ndarray:
    """C's `if (v > m) m = v;` from m = 0 over axis 1."""
    m = np.zeros(v.shape[0], F32)
    for j in range(v.shape[1]):
        m = np.where(v[:, j] > m, v[:, j], m)
    return m
