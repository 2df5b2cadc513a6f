"""numba CPU kernels for IQ1_S and IQ1_M.

Each batch holds LANES blocks (IQ1_S: 8 super-blocks of 8 blocks of 32; IQ1_M: 4 of 16 blocks
of 16). Per block, scalar (block_ops, shared with CUDA): weights, stable sort, prefix sums.
Then the exhaustive split search, ggml's hot loop (IQ1_S: 561 splits x 2 signs, IQ1_M: 153
splits x 4 sign pairs), runs for all LANES blocks at once: every block walks the same splits,
so the lane loop is branch-free selects that LLVM turns into SIMD. Then per block, scalar
again: levels, grid and neighbours (block_ops.best_neighbour scores a candidate with 8 table
loads), packing. prange hands each thread a run of batches; the bytes never depend on the
thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import ImatrixRequiredError
from ..registry import register
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads, weights_or_dummy
from ..shared.ops import F
from ..types import get_format
from . import block_ops as bo
from . import superblock_ops as sbo
from .grid import iq1_tables

LANES = 64
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
P0, P1, P2 = (F(v) for v in bo.X_P)
M0, M1, M2 = (F(v) for v in bo.X_M)
NEG_MAX = -bo.FLT_MAX


@njit(**_JIT)
def search_s_lanes(SX, SW, nl, ST):
    """block_ops.search_s for nl blocks at once; SX, SW: (33, LANES) prefix sums. ST rows:
    scale, best score, i1, i2, shift (indices as exact floats). Each lane's state is read
    into locals and written back once per split: with one output array and row views
    LLVM vectorizes the lane loop (five separate output arrays defeated its alias checks)."""
    scale, best, b1, b2, sh = ST[0], ST[1], ST[2], ST[3], ST[4]
    for l in range(nl):
        best[l] = NEG_MAX
        scale[l] = F(0)
        b1[l] = F(-1)
        b2[l] = F(-1)
        sh[l] = F(0)
    s0, w0, sn, wn = SX[0], SW[0], SX[32], SW[32]
    for i1 in range(33):
        v1 = F(i1)
        s1, w1 = SX[i1], SW[i1]
        for i2 in range(i1, 33):
            v2 = F(i2)
            s2, w2 = SX[i2], SW[i2]
            for l in range(nl):
                a = s1[l] - s0[l]
                b = s2[l] - s1[l]
                t = sn[l] - s2[l]
                wa = w1[l] - w0[l]
                wb = w2[l] - w1[l]
                wt = wn[l] - w2[l]
                bs, sc, c1, c2, cs = best[l], scale[l], b1[l], b2[l], sh[l]
                sumqx = a * P0 + b * P1 + t * P2
                sumq2 = wa * P0 * P0 + wb * P1 * P1 + wt * P2 * P2
                ok = (sumq2 > 0) & (sumqx * sumqx > bs * sumq2)
                s = sumqx / sumq2
                sc = s if ok else sc
                bs = s * sumqx if ok else bs
                c1 = v1 if ok else c1
                c2 = v2 if ok else c2
                cs = F(1) if ok else cs
                sumqx = a * M0 + b * M1 + t * M2
                sumq2 = wa * M0 * M0 + wb * M1 * M1 + wt * M2 * M2
                ok = (sumq2 > 0) & (sumqx * sumqx > bs * sumq2)
                s = sumqx / sumq2
                sc = s if ok else sc
                bs = s * sumqx if ok else bs
                c1 = v1 if ok else c1
                c2 = v2 if ok else c2
                cs = F(-1) if ok else cs
                best[l], scale[l], b1[l], b2[l], sh[l] = bs, sc, c1, c2, cs


@njit(**_JIT)
def search_m_lanes(PX, PW, nl, ST):
    """block_ops.search_m for nl blocks at once; PX, PW: (34, LANES) half prefix sums (row
    17*h + j). ST rows: scale, best score, i1, i2, sign pair k (as in search_s_lanes)."""
    scale, best, b1, b2, bk = ST[0], ST[1], ST[2], ST[3], ST[4]
    for l in range(nl):
        best[l] = NEG_MAX
        scale[l] = F(0)
        b1[l] = F(-1)
        b2[l] = F(-1)
        bk[l] = F(-1)
    tx0, tx1, tw0, tw1 = PX[16], PX[33], PW[16], PW[33]
    for i1 in range(17):
        v1 = F(i1)
        x10, x11, w10, w11 = PX[i1], PX[17 + i1], PW[i1], PW[17 + i1]
        for i2 in range(i1, 17):
            v2 = F(i2)
            x20, x21, w20, w21 = PX[i2], PX[17 + i2], PW[i2], PW[17 + i2]
            for l in range(nl):
                sx0 = x10[l] + x20[l]
                sx1 = x11[l] + x21[l]
                qxp0 = tx0[l] * P2 - sx0
                qxm0 = tx0[l] * M2 - sx0
                q2p0 = (tw0[l] * P2 * P2 + w10[l] * F(0.75)) + w20[l] * F(-1.25)
                q2m0 = (tw0[l] * M2 * M2 + w10[l] * F(1.25)) + w20[l] * F(-0.75)
                qxp1 = tx1[l] * P2 - sx1
                qxm1 = tx1[l] * M2 - sx1
                q2p1 = (tw1[l] * P2 * P2 + w11[l] * F(0.75)) + w21[l] * F(-1.25)
                q2m1 = (tw1[l] * M2 * M2 + w11[l] * F(1.25)) + w21[l] * F(-0.75)
                bs, sc, c1, c2, ck = best[l], scale[l], b1[l], b2[l], bk[l]
                for k in range(4):
                    sumqx = (qxp0 if k < 2 else qxm0) + (qxp1 if k % 2 == 0 else qxm1)
                    sumq2 = (q2p0 if k < 2 else q2m0) + (q2p1 if k % 2 == 0 else q2m1)
                    ok = (sumq2 > 0) & (sumqx * sumqx > bs * sumq2)
                    s = sumqx / sumq2
                    sc = s if ok else sc
                    bs = s * sumqx if ok else bs
                    c1 = v1 if ok else c1
                    c2 = v2 if ok else c2
                    ck = F(k) if ok else ck
                best[l], scale[l], b1[l], b2[l], bk[l] = bs, sc, c1, c2, ck


@njit(**_JIT)
def _block_bad(x, o, n):
    bad = False
    for i in range(n):
        bad |= nonfinite(x[o + i])
    return bad


@njit(parallel=True, **_JIT)
def _quantize_s(x, n_per_row, qw, out, bad, fail, lev, kmap, nbr):
    n_sb = x.size // 256
    per = LANES // 8
    for t in prange((n_sb + per - 1) // per):
        W = np.zeros((LANES, 32), np.float32)
        IDX = np.zeros((LANES, 32), np.int32)
        SX = np.zeros((33, LANES), np.float32)
        SW = np.zeros((33, LANES), np.float32)
        sx = np.empty(33, np.float32)
        sw = np.empty(33, np.float32)
        live = np.zeros(LANES, np.bool_)
        ST = np.empty((5, LANES), np.float32)
        L = np.empty(32, np.int32)
        index = np.empty(4, np.int32)
        e = np.empty(24, np.float32)
        ires = np.empty(2, np.int32)
        scales = np.empty(8, np.float32)
        shifts = np.empty(8, np.int32)
        sb0 = t * per
        nsb = min(per, n_sb - sb0)
        for s in range(nsb):
            xo = (sb0 + s) * 256
            bad[t] |= _block_bad(x, xo, 256)
            sigma2 = bo.sigma2_of(x, xo)
            for ib in range(8):
                l = 8 * s + ib
                xb = xo + 32 * ib
                bo.block_weights(x, xb, 32, True, qw, (xb % n_per_row), sigma2, W[l])
                live[l] = bo.absmax(x, xb, 32) >= bo.EPS_S
                bo.sort_order(x, xb, 32, IDX[l])
                bo.prefix_sums(x, xb, W[l], IDX[l], 32, sx, sw)
                for j in range(33):
                    SX[j, l] = sx[j]
                    SW[j, l] = sw[j]
        search_s_lanes(SX, SW, nsb * 8, ST)
        for s in range(nsb):
            xo = (sb0 + s) * 256
            oo = (sb0 + s) * bo.S_SIZE
            for j in range(bo.S_SIZE):
                out[oo + j] = 0
            for ib in range(8):
                l = 8 * s + ib
                scales[ib] = F(0)
                shifts[ib] = 1
                i1, i2, shift = int(ST[2, l]), int(ST[3, l]), int(ST[4, l])
                if not live[l] or i1 < 0 or i2 < 0 or shift == 0:
                    continue
                scales[ib] = bo.finish_s(lev, kmap, nbr, x, xo + 32 * ib, W[l], IDX[l], i1, i2,
                                         ST[0, l], shift, out, oo, ib, L, index, e, ires)
                shifts[ib] = ires[0]
                fail[t] |= ires[1] != 0
            sbo.pack_s(out, oo, scales, shifts)


@njit(parallel=True, **_JIT)
def _quantize_m(x, n_per_row, qw, use_w, out, bad, fail, lev, kmap, nbr):
    n_sb = x.size // 256
    per = LANES // 16
    for t in prange((n_sb + per - 1) // per):
        W = np.zeros((LANES, 16), np.float32)
        IDX = np.zeros((LANES, 16), np.int32)
        PX = np.zeros((34, LANES), np.float32)
        PW = np.zeros((34, LANES), np.float32)
        px = np.empty(34, np.float32)
        pw = np.empty(34, np.float32)
        live = np.zeros(LANES, np.bool_)
        ST = np.empty((5, LANES), np.float32)
        L = np.empty(16, np.int32)
        index = np.empty(2, np.int32)
        e = np.empty(24, np.float32)
        ires = np.empty(2, np.int32)
        scales = np.empty(16, np.float32)
        shifts = np.empty(16, np.int32)
        wsc = np.empty(16, np.float32)
        sb0 = t * per
        nsb = min(per, n_sb - sb0)
        for s in range(nsb):
            xo = (sb0 + s) * 256
            bad[t] |= _block_bad(x, xo, 256)
            sigma2 = bo.sigma2_of(x, xo) if use_w else F(0)
            for ib in range(16):
                l = 16 * s + ib
                xb = xo + 16 * ib
                bo.block_weights(x, xb, 16, use_w, qw, (xb % n_per_row), sigma2, W[l])
                live[l] = bo.absmax(x, xb, 16) >= bo.EPS_M
                bo.sort_order(x, xb, 16, IDX[l])
                bo.half_prefix_sums(x, xb, W[l], IDX[l], px, pw)
                for j in range(34):
                    PX[j, l] = px[j]
                    PW[j, l] = pw[j]
        search_m_lanes(PX, PW, nsb * 16, ST)
        for s in range(nsb):
            xo = (sb0 + s) * 256
            oo = (sb0 + s) * bo.M_SIZE
            for j in range(bo.M_SIZE):
                out[oo + j] = 0
            for ib in range(16):
                l = 16 * s + ib
                scales[ib] = F(0)
                shifts[ib] = 0
                i1, i2, k = int(ST[2, l]), int(ST[3, l]), int(ST[4, l])
                if not live[l] or i1 < 0 or i2 < 0 or k < 0:
                    continue
                scales[ib] = bo.finish_m(lev, kmap, nbr, x, xo + 16 * ib, W[l], IDX[l], i1, i2,
                                         ST[0, l], k, out, oo, ib, L, index, e, ires)
                shifts[ib] = ires[0]
                fail[t] |= ires[1] != 0
            sigma2 = bo.sigma2_of(x, xo) if use_w else F(0)
            sbo.pack_m(lev, x, xo, use_w, qw, xo % n_per_row, sigma2, out, oo, scales, shifts,
                       wsc)


def _run(qtype: str, rows, imatrix, threads):
    fmt = get_format(qtype)
    set_threads(threads)
    lev, kmap, nbr = iq1_tables()
    n_rows, n_per_row = rows.shape
    x = flat(rows)
    n_sb = x.size // 256
    per = LANES // (8 if qtype == "IQ1_S" else 16)
    out = np.empty(n_sb * fmt.type_size, np.uint8)
    bad = np.zeros((n_sb + per - 1) // per, np.bool_)
    fail = np.zeros_like(bad)
    qw = weights_or_dummy(imatrix)
    if qtype == "IQ1_S":
        _quantize_s(x, n_per_row, qw, out, bad, fail, lev, kmap, nbr)
    else:
        _quantize_m(x, n_per_row, qw, imatrix is not None, out, bad, fail, lev, kmap, nbr)
    raise_on_nonfinite(rows, bad)
    if fail.any():
        raise ValueError(f"{qtype}: weights too large to quantize (no grid point within float "
                         "range; llama.cpp would read out of bounds here)")
    return out.reshape(n_rows, -1)


@register("IQ1_S", "cpu")
def iq1_s_cpu(rows, imatrix=None, threads=None):
    if imatrix is None:
        raise ImatrixRequiredError("IQ1_S")
    return _run("IQ1_S", rows, imatrix, threads)


@register("IQ1_M", "cpu")
def iq1_m_cpu(rows, imatrix=None, threads=None):
    return _run("IQ1_M", rows, imatrix, threads)
