"""Scalar building blocks of ggml-quants.c, written once and compiled for two targets.

Imported normally (`quantdesk.kernels.ops`) every function is `numba.njit(cache=True)` for the
CPU kernels; `cuda_common.load_cuda_twin("shared.ops")` loads this same file a second time under
another module name, where `_jit` is `numba.cuda.jit(device=True)`, so the GPU runs the very
same code. Rules for byte identity (see reference_ops.py): float32 everywhere (numba promotes
float32 op int64 to float64, so ints are converted with F() first), sums in ggml's order, and
every product that feeds an addition goes through `mul`, because NVVM contracts a*b+c into an
FMA by default (libggml-base is built without FMA); on the CPU `mul` is a plain product and
LLVM does not contract without fast-math flags.

Arrays are 1-D with explicit offsets (x[xo + i]) so the same code runs on both targets.
"""
from __future__ import annotations

import numpy as np

from . import cache_guard

cache_guard.check()   # every numba kernel imports this file: before any cached kernel loads

F = np.float32
GROUP_MAX_EPS = np.float32(1e-15)


def jit_for(module_name: str):
    """The decorator for a shared-source module: CUDA device functions when the module was
    loaded as the `*_cuda` twin (cuda_common.load_cuda_twin), cached njit otherwise."""
    if module_name.endswith("_cuda"):
        from numba import cuda
        return lambda fn: cuda.jit(device=True)(fn)
    from numba import njit
    return lambda fn: njit(cache=True, error_model="numpy", inline="always")(fn)


_jit = jit_for(__name__)


def ops_for(module_name: str):
    """This module for the target of a shared-source module: itself for the CPU, its CUDA twin
    for a module loaded as `*_cuda` (so a block_ops module calls device functions on the GPU)."""
    if module_name.endswith("_cuda"):
        from .cuda_common import load_cuda_twin
        return load_cuda_twin("shared.ops")
    import sys
    return sys.modules[__name__]

if __name__.endswith("_cuda"):
    from numba import config as _config

    if _config.ENABLE_CUDASIM:   # the simulator runs Python on numpy float32 scalars
        @_jit
        def mul(a, b):
            return a * b

        @_jit
        def f32_bits(f):
            return int(np.float32(f).view(np.int32))

        @_jit
        def bits_f32(i):
            return np.uint32(i & 0xFFFFFFFF).view(np.float32)
    else:
        from numba.cuda import libdevice as _libdevice

        @_jit
        def mul(a, b):
            # __fmul_rn is never fused into an FMA by NVVM
            return _libdevice.fmul_rn(a, b)

        @_jit
        def f32_bits(f):
            return _libdevice.float_as_int(f)

        @_jit
        def bits_f32(i):
            return _libdevice.int_as_float(np.int32(i))
else:
    from .cpu_bits import bits_f32, f32_bits  # noqa: F401  (LLVM bitcasts)

    @_jit
    def mul(a, b):
        return a * b


# ---------------------------------------------------------------- rounding and fp16

@_jit
def nearest_int(fval):
    """ggml's nearest_int: the low mantissa bits of fval + 1.5*2**23 (round half to even
    inside +-2**22, and ggml's own wrapped value outside)."""
    return (f32_bits(F(fval + F(12582912.0))) & 0x7FFFFF) - 0x400000


@_jit
def fp16_bits(f):
    """float32 -> IEEE half bits as ggml_compute_fp32_to_fp16 computes them (round to nearest
    even, subnormals, overflow to inf, NaN -> 0x7E00 with the sign)."""
    base = (abs(f) * F(5.192296858534828e33)) * F(7.703719777548943e-34)   # 2**112, 2**-110
    w = f32_bits(f) & 0xFFFFFFFF
    shl1_w = (w + w) & 0xFFFFFFFF
    sign = w & 0x80000000
    bias = shl1_w & 0xFF000000
    if bias < 0x71000000:
        bias = 0x71000000
    base = bits_f32((bias >> 1) + 0x07800000) + base
    bits = f32_bits(base) & 0xFFFFFFFF
    nonsign = ((bits >> 13) & 0x7C00) + (bits & 0x0FFF)
    return (sign >> 16) | (0x7E00 if shl1_w > 0xFF000000 else nonsign)


@_jit
def fp16_value(h):
    """IEEE half bits -> float32 (GGML_FP16_TO_FP32)."""
    sign = (h & 0x8000) << 16
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:                                    # zero and subnormals: m * 2**-24, exact
        v = mul(F(m), F(5.960464477539063e-08))   # no FMA contraction with a later add on CUDA
        return -v if sign else v
    if e == 31:
        return bits_f32(sign | 0x7F800000 | (m << 13))
    return bits_f32(sign | ((e + 112) << 23) | (m << 13))


@_jit
def put_half(out, o, h):
    out[o] = h & 0xFF
    out[o + 1] = (h >> 8) & 0xFF


@_jit
def clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


# ---------------------------------------------------------------- scale searches

@_jit
def make_qx_quants(n, nmax, x, xo, w, wo, L, lo):
    """make_qx_quants(n, nmax, x, L, rmse_type=1, qw=w): L[lo+i] in [0, 2*nmax), returns the
    scale. Callers pass w = x*x for ggml's qw == NULL case."""
    mx = F(0)
    amax = F(0)
    for i in range(n):
        ax = abs(x[xo + i])
        if ax > amax:
            amax = ax
            mx = x[xo + i]
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[lo + i] = 0
        return F(0)
    iscale = F(-nmax) / mx
    sumlx = F(0)
    suml2 = F(0)
    for i in range(n):
        l = clamp(nearest_int(iscale * x[xo + i]), -nmax, nmax - 1)
        L[lo + i] = l + nmax
        fl = F(l)
        sumlx += mul(w[wo + i] * x[xo + i], fl)
        suml2 += mul(w[wo + i] * fl, fl)
    scale = sumlx / suml2 if suml2 != 0 else F(0)
    best = scale * sumlx
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = -(F(nmax) + mul(F(0.1), F(step))) / mx
        sumlx = F(0)
        suml2 = F(0)
        for i in range(n):
            fl = F(clamp(nearest_int(iscale * x[xo + i]), -nmax, nmax - 1))
            sumlx += mul(w[wo + i] * x[xo + i], fl)
            suml2 += mul(w[wo + i] * fl, fl)
        if suml2 > 0 and sumlx * sumlx > best * suml2:
            for i in range(n):
                L[lo + i] = nmax + clamp(nearest_int(iscale * x[xo + i]), -nmax, nmax - 1)
            scale = sumlx / suml2
            best = scale * sumlx
    return scale


@_jit
def make_q3_quants(n, nmax, x, xo, L, lo):
    """make_q3_quants(n, nmax, x, L, do_rmse=true): L[lo+i] in [0, 2*nmax), returns the scale."""
    mx = F(0)
    amax = F(0)
    for i in range(n):
        ax = abs(x[xo + i])
        if ax > amax:
            amax = ax
            mx = x[xo + i]
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[lo + i] = 0
        return F(0)
    iscale = F(-nmax) / mx
    sumlx = F(0)
    suml2 = F(0)
    for i in range(n):
        xi = x[xo + i]
        l = clamp(nearest_int(iscale * xi), -nmax, nmax - 1)
        L[lo + i] = l
        w = xi * xi
        sumlx += mul(w * xi, F(l))
        suml2 += mul(w * F(l), F(l))
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            xi = x[xo + i]
            w = xi * xi
            li = F(L[lo + i])
            slx = sumlx - mul(w * xi, li)
            if slx > 0:
                sl2 = suml2 - mul(w * li, li)
                new_l = clamp(nearest_int(xi * sl2 / slx), -nmax, nmax - 1)
                if new_l != L[lo + i]:
                    fn = F(new_l)
                    slx += mul(w * xi, fn)
                    sl2 += mul(w * fn, fn)
                    if sl2 > 0 and slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[lo + i] = new_l
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    for i in range(n):
        L[lo + i] += nmax
    return sumlx / suml2 if suml2 > 0 else F(0)


@_jit
def make_qkx3_quants(n, nmax, x, xo, w, wo, L, lo, Laux, rmin, rdelta, nstep, res):
    """make_qkx3_quants(..., use_mad=false) with weights: L[lo+i] in [0, nmax]; returns the
    scale and stores the_min (ggml's *the_min, i.e. minus the offset) in res[0]."""
    mn = x[xo]
    mx = x[xo]
    sum_w = w[wo]
    sum_x = sum_w * x[xo]
    for i in range(1, n):
        xi = x[xo + i]
        if xi < mn:
            mn = xi
        if xi > mx:
            mx = xi
        sum_w += w[wo + i]
        sum_x += mul(w[wo + i], xi)
    if mn > 0:
        mn = F(0)
    if mx <= mn:
        for i in range(n):
            L[lo + i] = 0
        res[0] = -mn
        return F(0)
    iscale = F(nmax) / (mx - mn)
    scale = F(1) / iscale
    best = F(0)
    for i in range(n):
        l = clamp(nearest_int(iscale * (x[xo + i] - mn)), 0, nmax)
        L[lo + i] = l
        diff = (mul(scale, F(l)) + mn) - x[xo + i]
        best += mul(w[wo + i], diff * diff)
    for step in range(nstep + 1):
        iscale = ((rmin + mul(rdelta, F(step))) + F(nmax)) / (mx - mn)
        sum_l = F(0)
        sum_l2 = F(0)
        sum_xl = F(0)
        for i in range(n):
            v = iscale * (x[xo + i] - mn)
            l = nearest_int(v if v < F(nmax) else F(nmax)) if v > 0 else 0
            Laux[i] = l
            wl = mul(w[wo + i], F(l))
            sum_l += wl
            sum_l2 += mul(wl, F(l))
            sum_xl += mul(wl, x[xo + i])
        D = mul(sum_w, sum_l2) - mul(sum_l, sum_l)
        if D > 0:
            this_scale = (mul(sum_w, sum_xl) - mul(sum_x, sum_l)) / D
            this_min = (mul(sum_l2, sum_x) - mul(sum_l, sum_xl)) / D
            if this_min > 0:
                this_min = F(0)
                this_scale = sum_xl / sum_l2
            mad = F(0)
            for i in range(n):
                diff = (mul(this_scale, F(Laux[i])) + this_min) - x[xo + i]
                mad += mul(w[wo + i], diff * diff)
            if mad < best:
                for i in range(n):
                    L[lo + i] = Laux[i]
                best = mad
                scale = this_scale
                mn = this_min
    res[0] = -mn
    return scale


@_jit
def seq_sumsq(x, xo, n):
    """sum of x*x in element order (ggml's sigma2 numerators)."""
    s = F(0)
    for i in range(n):
        s += mul(x[xo + i], x[xo + i])
    return s
