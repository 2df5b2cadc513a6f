"""numba CPU kernels for IQ4_NL and IQ4_XS: SIMD across 32-weight blocks.

A batch holds LANES consecutive 32-weight blocks as lanes (X[j, lane] = weight j of the block;
for IQ4_XS, lanes 8s..8s+7 are the sub-blocks of super-block s). The expensive part, the scale
search (an initial pass and 15 trial inverse scales, each mapping 32 weights to the codebook),
runs across all lanes at once with branch-free index picking: ggml's binary search
best_index_int8 equals a count of codebook midpoints (codebook.py), so every lane does the
same comparisons. IQ4_XS then quantizes each super-block's eight scales (a few scalar steps)
and both types re-pick the indices across lanes. prange hands each thread a run of batches;
the bytes never depend on the thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads, weights_or_dummy
from ..shared.ops import F, GROUP_MAX_EPS, clamp, fp16_bits, nearest_int, put_half
from ..types import get_format
from .codebook import IQ4NL_MIDPOINTS, IQ4NL_VALUES

LANES = 128                      # 32-weight blocks per batch (16 IQ4_XS super-blocks)
NTRY = 7
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
MID = IQ4NL_MIDPOINTS
VAL = IQ4NL_VALUES
STEP = (IQ4NL_VALUES[1:] - IQ4NL_VALUES[:-1]).astype(np.float32)


@njit(inline="always", **_JIT)
def _value(a):
    """kvalues_iq4nl[best_index_int8(a)]: the codebook value, built by selects (SIMD)."""
    q = VAL[0]
    for k in range(15):
        q = q + (STEP[k] if a >= MID[k] else F(0))
    return VAL[15] if a != a else q


@njit(inline="always", **_JIT)
def _index(a):
    """best_index_int8(16, kvalues_iq4nl, a) as an int32 count of midpoints (NaN: 15)."""
    c = np.int32(0)
    for k in range(15):
        c += np.int32(1) if a >= MID[k] else np.int32(0)
    return np.int32(15) if a != a else c


@njit(**_JIT)
def _sums(X, W, iscale, nl, sumqx, sumq2):
    for l in range(nl):
        sumqx[l] = F(0)
        sumq2[l] = F(0)
    for j in range(32):
        for l in range(nl):
            xj = X[j, l]
            q = _value(iscale[l] * xj)
            wq = W[j, l] * q
            sumqx[l] += wq * xj
            sumq2[l] += wq * q


@njit(**_JIT)
def search_lanes(X, W, nl, scale, work):
    """block_scale of block_ops for nl lanes at once; work: float32 scratch (6, LANES)."""
    amax, mx, iscale, sumqx, sumq2, best = work[0], work[1], work[2], work[3], work[4], work[5]
    for l in range(nl):
        amax[l] = F(0)
        mx[l] = F(0)
    for j in range(32):
        for l in range(nl):
            ax = abs(X[j, l])
            c = ax > amax[l]
            mx[l] = X[j, l] if c else mx[l]
            amax[l] = ax if c else amax[l]
    for l in range(nl):
        iscale[l] = F(1) / (-mx[l] / VAL[0])
    _sums(X, W, iscale, nl, sumqx, sumq2)
    for l in range(nl):
        d = sumqx[l] / sumq2[l] if sumq2[l] > 0 else F(0)
        scale[l] = d
        best[l] = d * sumqx[l]
    for itry in range(-NTRY, NTRY + 1):
        num = F(itry - 127)
        for l in range(nl):
            iscale[l] = num / mx[l]
        _sums(X, W, iscale, nl, sumqx, sumq2)
        for l in range(nl):
            better = sumq2[l] > 0 and sumqx[l] * sumqx[l] > best[l] * sumq2[l]
            d = sumqx[l] / sumq2[l]
            scale[l] = d if better else scale[l]
            best[l] = d * sumqx[l] if better else best[l]
    for l in range(nl):
        scale[l] = F(0) if amax[l] < GROUP_MAX_EPS else scale[l]


@njit(**_JIT)
def _load(x, qw, use_w, per_row, b0, nl, sb, X, W, s2):
    """Blocks b0.. into X and their search weights into W: x*x, or qw*sqrt(sigma2 + x*x) with
    sigma2 = 2*sum(x*x)/(32*sb) over each group of sb blocks (1: IQ4_NL, 8: IQ4_XS), summed in
    element order. per_row: blocks per row (the imatrix period). True when a weight is NaN/Inf."""
    bad = False
    for l in range(nl):
        base = (b0 + l) * 32
        for j in range(32):
            v = x[base + j]
            X[j, l] = v
            bad |= nonfinite(v)
    if not use_w:
        for j in range(32):
            for l in range(nl):
                W[j, l] = X[j, l] * X[j, l]
        return bad
    factor = F(2.0) / F(32 * sb)
    for g in range(nl // sb):
        s = F(0)
        for l in range(g * sb, g * sb + sb):
            for j in range(32):
                s += X[j, l] * X[j, l]
        for l in range(g * sb, g * sb + sb):
            s2[l] = s * factor
    for l in range(nl):
        wo = ((b0 + l) % per_row) * 32
        for j in range(32):
            W[j, l] = qw[wo + j] * np.sqrt(s2[l] + X[j, l] * X[j, l])
    return bad


@njit(**_JIT)
def _put_indices(X, inv, nl, Q, out, b0, size, head):
    """Re-pick every lane's indices against inv[lane] and write them as 16 nibble bytes: at
    byte 2 of an IQ4_NL block (size 18), at byte head + 16 * sub-block of an IQ4_XS one."""
    for j in range(32):
        for l in range(nl):
            Q[j, l] = _index(inv[l] * X[j, l])
    for l in range(nl):
        blk = b0 + l
        if size == 18:
            o = blk * 18 + 2
        else:
            o = (blk // 8) * size + head + 16 * (blk % 8)
        for j in range(16):
            out[o + j] = Q[j, l] | (Q[j + 16, l] << 4)


@njit(parallel=True, **_JIT)
def _quantize(xs, x, n_per_row, qw, use_w, out, bad):
    """xs False: IQ4_NL, True: IQ4_XS (needs LANES % 8 == 0 and rows of whole super-blocks)."""
    total = x.size // 32
    per_row = n_per_row // 32
    n_batches = (total + LANES - 1) // LANES
    sb = 8 if xs else 1
    for t in prange(n_batches):
        X = np.empty((32, LANES), np.float32)
        W = np.empty((32, LANES), np.float32)
        Q = np.empty((32, LANES), np.int32)
        work = np.empty((6, LANES), np.float32)
        scale = np.empty(LANES, np.float32)
        inv = np.empty(LANES, np.float32)
        s2 = np.empty(LANES, np.float32)
        b0 = t * LANES
        nl = min(total - b0, LANES)
        bad[t] = _load(x, qw, use_w, per_row, b0, nl, sb, X, W, s2)
        search_lanes(X, W, nl, scale, work)
        if not xs:
            for l in range(nl):
                s = scale[l]
                put_half(out, (b0 + l) * 18, fp16_bits(s))
                inv[l] = F(1) / s if s != 0 else F(0)
            _put_indices(X, inv, nl, Q, out, b0, 18, 2)
            continue
        for g in range(nl // 8):
            oo = ((b0 // 8) + g) * 136
            amax = F(0)
            max_scale = F(0)
            for ib in range(8):
                s = scale[8 * g + ib]
                if abs(s) > amax:
                    amax = abs(s)
                    max_scale = s
            d = -max_scale / F(32)
            put_half(out, oo, fp16_bits(d))
            inv_d = F(1) / d if d != 0 else F(0)
            sh = 0
            for ib in range(8):
                q = clamp(nearest_int(inv_d * scale[8 * g + ib]), -32, 31)
                dl = d * F(q)
                inv[8 * g + ib] = F(1) / dl if dl != 0 else F(0)
                q += 32
                sh |= (q >> 4) << (2 * ib)
                if ib % 2 == 0:
                    out[oo + 4 + ib // 2] = q & 0xF
                else:
                    out[oo + 4 + ib // 2] |= (q & 0xF) << 4
            put_half(out, oo + 2, sh)
        _put_indices(X, inv, nl, Q, out, b0, 136, 8)


def _run(qtype: str, rows, imatrix, threads):
    fmt = get_format(qtype)
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    x = flat(rows)
    out = np.empty(n_rows * (n_per_row // fmt.block_size) * fmt.type_size, np.uint8)
    bad = np.zeros((x.size // 32 + LANES - 1) // LANES, np.bool_)
    _quantize(qtype == "IQ4_XS", x, n_per_row, weights_or_dummy(imatrix), imatrix is not None,
              out, bad)
    raise_on_nonfinite(rows, bad)
    return out.reshape(n_rows, -1)


@register("IQ4_NL", "cpu")
def iq4_nl_cpu(rows, imatrix=None, threads=None):
    return _run("IQ4_NL", rows, imatrix, threads)


@register("IQ4_XS", "cpu")
def iq4_xs_cpu(rows, imatrix=None, threads=None):
    return _run("IQ4_XS", rows, imatrix, threads)
