"""numba CPU kernels for IQ1_S and IQ1_M.

Each batch holds LANES blocks (IQ1_S: 8 super-blocks of 8 blocks of 32; IQ1_M: 4 of 16 blocks
of 16), transposed so that block l is lane l. Across lanes (vector loops): the stable sort as
ranks and the prefix sums (cpu_lanes.sorted_prefix_sums), then the exhaustive split search,
ggml's hot loop (split_lanes: IQ1_S 561 splits x 2 signs, IQ1_M 153 splits x 4 sign pairs;
every block walks the same splits, so the lane loop is branch-free selects). Then per block:
levels, grid and off-grid neighbours (cpu_lanes.scan: one vector loop over the candidate
list), packing (superblock_ops, shared with CUDA). prange hands each thread a run of
batches; the bytes never depend on the thread count. The CUDA kernel runs block_ops.py.
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
from . import cpu_lanes as cl
from . import superblock_ops as sbo
from .grid import iq1_tables
from .split_lanes import M_TABLE_ROWS, S_TABLE_ROWS, search_m_lanes, search_s_lanes

LANES = 64
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _block_bad(x, o, n):
    bad = False
    for i in range(n):
        bad |= nonfinite(x[o + i])
    return bad


@njit(parallel=True, **_JIT)
def _quantize_s(x, n_per_row, qw, out, bad, fail, lev, kmap, NT):
    n_sb = x.size // 256
    per = LANES // 8
    for t in prange((n_sb + per - 1) // per):
        W = np.empty((LANES, 32), np.float32)
        IDX = np.zeros((LANES, 32), np.int32)     # zeros: always valid indices (NaN rows)
        SX = np.empty((33, LANES), np.float32)
        SW = np.empty((33, LANES), np.float32)
        XT = np.empty((32, LANES), np.float32)
        WT = np.empty((32, LANES), np.float32)
        R = np.empty((32, LANES), np.int32)
        DX = np.empty((32, LANES), np.float32)
        DW = np.empty((32, LANES), np.float32)
        B = np.empty(cl.MAXLIST, np.int32)
        live = np.zeros(LANES, np.bool_)
        ST = np.empty((5, LANES), np.float32)
        T = np.empty((S_TABLE_ROWS, LANES), np.float32)
        L = np.empty(32, np.int32)
        index = np.empty(4, np.int32)
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
                cl.load_block(x, xb, 32, True, qw, (xb % n_per_row), sigma2, W, l, XT, WT)
                live[l] = bo.absmax(x, xb, 32) >= bo.EPS_S
        cl.sorted_prefix_sums(XT, WT, 32, nsb * 8, False, IDX, R, DX, DW, SX, SW)
        search_s_lanes(SX, SW, nsb * 8, ST, T)
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
                scales[ib] = cl.finish_s(lev, kmap, NT, x, xo + 32 * ib, W, IDX, l, i1, i2,
                                         ST[0, l], shift, out, oo, ib, L, index, B, ires)
                shifts[ib] = ires[0]
                fail[t] |= ires[1] != 0
            sbo.pack_s(out, oo, scales, shifts)


@njit(parallel=True, **_JIT)
def _quantize_m(x, n_per_row, qw, use_w, out, bad, fail, lev, kmap, NT):
    n_sb = x.size // 256
    per = LANES // 16
    for t in prange((n_sb + per - 1) // per):
        W = np.empty((LANES, 16), np.float32)
        IDX = np.zeros((LANES, 16), np.int32)     # zeros: always valid indices (NaN rows)
        PX = np.empty((34, LANES), np.float32)
        PW = np.empty((34, LANES), np.float32)
        XT = np.empty((16, LANES), np.float32)
        WT = np.empty((16, LANES), np.float32)
        R = np.empty((16, LANES), np.int32)
        DX = np.empty((32, LANES), np.float32)
        DW = np.empty((32, LANES), np.float32)
        B = np.empty(cl.MAXLIST, np.int32)
        live = np.zeros(LANES, np.bool_)
        ST = np.empty((5, LANES), np.float32)
        T = np.empty((M_TABLE_ROWS, LANES), np.float32)
        L = np.empty(16, np.int32)
        index = np.empty(2, np.int32)
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
                cl.load_block(x, xb, 16, use_w, qw, (xb % n_per_row), sigma2, W, l, XT, WT)
                live[l] = bo.absmax(x, xb, 16) >= bo.EPS_M
        cl.sorted_prefix_sums(XT, WT, 16, nsb * 16, True, IDX, R, DX, DW, PX, PW)
        search_m_lanes(PX, PW, nsb * 16, ST, T)
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
                scales[ib] = cl.finish_m(lev, kmap, NT, x, xo + 16 * ib, W, IDX, l, i1, i2,
                                         ST[0, l], k, out, oo, ib, L, index, B, ires)
                shifts[ib] = ires[0]
                fail[t] |= ires[1] != 0
            sigma2 = bo.sigma2_of(x, xo) if use_w else F(0)
            sbo.pack_m(lev, x, xo, use_w, qw, xo % n_per_row, sigma2, out, oo, scales, shifts,
                       wsc)


def _run(qtype: str, rows, imatrix, threads):
    fmt = get_format(qtype)
    set_threads(threads)
    lev, kmap, _ = iq1_tables()
    NT = cl.neighbour_tables()
    n_rows, n_per_row = rows.shape
    x = flat(rows)
    n_sb = x.size // 256
    per = LANES // (8 if qtype == "IQ1_S" else 16)
    out = np.empty(n_sb * fmt.type_size, np.uint8)
    bad = np.zeros((n_sb + per - 1) // per, np.bool_)
    fail = np.zeros_like(bad)
    qw = weights_or_dummy(imatrix)
    if qtype == "IQ1_S":
        _quantize_s(x, n_per_row, qw, out, bad, fail, lev, kmap, NT)
    else:
        _quantize_m(x, n_per_row, qw, imatrix is not None, out, bad, fail, lev, kmap, NT)
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
