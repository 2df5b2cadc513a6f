"""make_qp_quants (ggml-quants.c) for the numba CPU and CUDA K-quant kernels, one source.

Loaded normally it is a cached njit function (kquant_cpu); `cuda_common.load_cuda_twin(
"kquant_ops")` loads the same file as CUDA device code (kquant_cuda). The rules of ops.py apply:
float32 throughout, sums in ggml's order, and every product that feeds an addition or a
comparison of products goes through `mul`, so NVVM cannot contract it into an FMA.
"""
from __future__ import annotations

from .ops import GROUP_MAX_EPS, F, jit_for

_jit = jit_for(__name__)

if __name__.endswith("_cuda"):
    from .cuda_common import load_cuda_twin
    _ops = load_cuda_twin("ops")
else:
    from . import ops as _ops

mul = _ops.mul
nearest_int = _ops.nearest_int


@_jit
def make_qp_quants(x, n, nmax, qw, L):
    """ggml's make_qp_quants on one super-block's n scales x with weights qw; L as uint8.
    Returns the scale."""
    zero = F(0)
    mx = zero
    for i in range(n):
        mx = mx if mx > x[i] else x[i]
    if mx < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return zero
    fnmax = F(nmax)
    iscale = fnmax / mx
    for i in range(n):
        L[i] = nearest_int(mul(iscale, x[i])) & 0xFF
    scale = F(1) / iscale
    best = zero
    for i in range(n):
        diff = x[i] - mul(scale, F(L[i]))
        best += mul(mul(qw[i], diff), diff)
    for step in range(-4, 5):
        if step != 0:
            iscale_is = (mul(F(0.1), F(step)) + fnmax) / mx
            scale_is = F(1) / iscale_is
            mse = zero
            for i in range(n):
                lf = F(min(nmax, nearest_int(mul(iscale_is, x[i]))))
                diff = x[i] - mul(scale_is, lf)
                mse += mul(mul(qw[i], diff), diff)
            if mse < best:
                best = mse
                iscale = iscale_is
    sumlx = zero
    suml2 = zero
    for i in range(n):
        l = min(nmax, nearest_int(mul(iscale, x[i])))
        L[i] = l & 0xFF
        lf = F(l)
        sumlx += mul(mul(qw[i], x[i]), lf)
        suml2 += mul(mul(qw[i], lf), lf)
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            w = qw[i]
            Li = F(L[i])
            slx = sumlx - mul(mul(w, x[i]), Li)
            sl2 = suml2 - mul(mul(w, Li), Li)
            if slx > zero and sl2 > zero:
                new_l = min(nmax, nearest_int(mul(x[i], sl2) / slx))
                if new_l != L[i]:
                    fl = F(new_l)
                    slx += mul(mul(w, x[i]), fl)
                    sl2 += mul(mul(w, fl), fl)
                    if mul(mul(slx, slx), suml2) > mul(mul(sumlx, sumlx), sl2):
                        L[i] = new_l & 0xFF
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    return sumlx / suml2 if suml2 > zero else zero
