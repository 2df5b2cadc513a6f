"""Per-block code of IQ4_NL and IQ4_XS, one source for the numba-cuda kernels (cuda.py, loaded
as device functions by shared/cuda_common.load_cuda_twin) and, compiled as njit, a scalar
cross-check of the lane kernels (see shared/ops.py for the byte-identity rules; reference.py
for what ggml does). `wbuf` (32 floats) and `scales` (8 floats) are the caller's scratch.
"""
from __future__ import annotations

import math

from ..shared.ops import F, GROUP_MAX_EPS, jit_for, ops_for
from ..types import get_format
from .codebook import IQ4NL_MIDPOINTS, IQ4NL_VALUES

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin

mul = _ops.mul
nearest_int = _ops.nearest_int
fp16_bits = _ops.fp16_bits
put_half = _ops.put_half
seq_sumsq = _ops.seq_sumsq
clamp = _ops.clamp

NL_SIZE = get_format("IQ4_NL").type_size     # 18 bytes per 32 weights
XS_SIZE = get_format("IQ4_XS").type_size     # 136 bytes per 256 weights
NTRY = 7
VALUES = IQ4NL_VALUES
MIDPOINTS = IQ4NL_MIDPOINTS


@_jit
def nl_index(a):
    """best_index_int8(16, kvalues_iq4nl, a): the number of midpoints <= a; 15 for NaN."""
    if a != a:
        return 15
    c = 0
    for k in range(15):
        if a >= MIDPOINTS[k]:
            c += 1
    return c


@_jit
def scale_sums(x, xo, w, wo, iscale, res):
    """res = (sum w*q*x, sum w*q*q) over the 32 weights, q the codebook value of iscale*x."""
    sumqx = F(0)
    sumq2 = F(0)
    for j in range(32):
        xj = x[xo + j]
        q = VALUES[nl_index(iscale * xj)]
        wq = mul(w[wo + j], q)
        sumqx += mul(wq, xj)
        sumq2 += mul(wq, q)
    res[0] = sumqx
    res[1] = sumq2


@_jit
def block_scale(x, xo, w, wo, res):
    """The least-squares scale of quantize_row_iq4_nl_impl for one 32-weight block (ntry 7)."""
    amax = F(0)
    mx = F(0)
    for j in range(32):
        ax = abs(x[xo + j])
        if ax > amax:
            amax = ax
            mx = x[xo + j]
    if amax < GROUP_MAX_EPS:
        return F(0)
    d = -mx / VALUES[0]
    scale_sums(x, xo, w, wo, F(1) / d, res)
    d = res[0] / res[1] if res[1] > 0 else F(0)
    best = d * res[0]
    for itry in range(-NTRY, NTRY + 1):
        scale_sums(x, xo, w, wo, F(itry - 127) / mx, res)
        if res[1] > 0 and res[0] * res[0] > best * res[1]:
            d = res[0] / res[1]
            best = d * res[0]
    return d


@_jit
def block_weights(x, xo, use_w, qw, qwo, sigma2, wbuf):
    for j in range(32):
        xj = x[xo + j]
        wbuf[j] = qw[qwo + j] * F(math.sqrt(sigma2 + mul(xj, xj))) if use_w else mul(xj, xj)


@_jit
def put_indices(x, xo, inv, out, o):
    """The 32 indices of inv*x as 16 bytes: low nibble weight j, high nibble weight j + 16."""
    for j in range(16):
        out[o + j] = nl_index(inv * x[xo + j]) | (nl_index(inv * x[xo + j + 16]) << 4)


@_jit
def iq4_nl_block(x, xo, use_w, qw, qwo, out, oo, wbuf, res):
    sigma2 = seq_sumsq(x, xo, 32) * F(0.0625) if use_w else F(0)
    block_weights(x, xo, use_w, qw, qwo, sigma2, wbuf)
    s = block_scale(x, xo, wbuf, 0, res)
    put_half(out, oo, fp16_bits(s))
    put_indices(x, xo, F(1) / s if s != 0 else F(0), out, oo + 2)


@_jit
def iq4_xs_block(x, xo, use_w, qw, qwo, out, oo, wbuf, res, scales):
    sigma2 = seq_sumsq(x, xo, 256) * F(0.0078125) if use_w else F(0)
    amax = F(0)
    max_scale = F(0)
    for ib in range(8):
        block_weights(x, xo + 32 * ib, use_w, qw, qwo + 32 * ib, sigma2, wbuf)
        s = block_scale(x, xo + 32 * ib, wbuf, 0, res)
        scales[ib] = s
        if abs(s) > amax:
            amax = abs(s)
            max_scale = s
    d = -max_scale / F(32)
    put_half(out, oo, fp16_bits(d))
    inv_d = F(1) / d if d != 0 else F(0)
    sh = 0
    for ib in range(8):
        l = clamp(nearest_int(inv_d * scales[ib]), -32, 31)
        dl = d * F(l)
        put_indices(x, xo + 32 * ib, F(1) / dl if dl != 0 else F(0), out, oo + 8 + 16 * ib)
        l += 32
        if ib % 2 == 0:
            out[oo + 4 + ib // 2] = l & 0xF
        else:
            out[oo + 4 + ib // 2] |= (l & 0xF) << 4
        sh |= (l >> 4) << (2 * ib)
    put_half(out, oo + 2, sh)
