"""numba CPU kernels for IQ2_XXS, IQ2_XS and IQ2_S: one super-block after another
(cpu_lanes.py, the trial scales of a group as SIMD lanes), independent super-blocks spread over
threads (prange over runs of CHUNK). The grid searches are data-dependent (a neighbour list per
off-grid octet, of 1 to 292 points), so lanes across groups would diverge at once; the trials
of one group do not until their neighbour scans. The bytes never depend on the thread count.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads, weights_or_dummy
from ..types import get_format
from .cpu_lanes import MAXT, NQ, x16_block, xxs_block
from .grid import KMAP_SIZE, tables

CHUNK = 16                       # super-blocks per prange item
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
KIND = {"IQ2_XXS": 0, "IQ2_XS": 1, "IQ2_S": 2}
PAD = 8                          # neighbour lists padded to a multiple of the AVX2 width


@njit(parallel=True, **_JIT)
def _quantize(kind, x, n_per_row, qw, use_w, kmap, valf, NT, out, size, bad):
    n_sb = x.size // 256
    per_row = n_per_row // 256
    n_chunks = (n_sb + CHUNK - 1) // CHUNK
    for t in prange(n_chunks):
        weight = np.empty(32, np.float32)
        waux = np.empty(32, np.float32)
        xval = np.empty(32, np.float32)
        wx = np.empty(32, np.float32)
        L = np.empty(32, np.int64)
        Lq = np.empty(32, np.uint8)
        scales = np.empty(16, np.float32)
        res = np.empty(4, np.float32)
        F4 = np.empty((4 + NQ, MAXT), np.float32)
        G = np.empty((4, MAXT), np.int32)
        U = np.empty(MAXT, np.int32)
        D = np.empty(NT[1].max(), np.int32)
        flag = False
        for s in range(t * CHUNK, min(n_sb, t * CHUNK + CHUNK)):
            for j in range(256):
                flag |= nonfinite(x[s * 256 + j])
            qwo = (s % per_row) * 256
            if kind == 0:
                xxs_block(x, s * 256, qw, qwo, kmap, out, s * size, valf, NT, weight, waux,
                          xval, wx, L, Lq, scales, res, F4, G, U, D)
            else:
                x16_block(kind == 2, x, s * 256, use_w, qw, qwo, kmap, out, s * size, valf, NT,
                          weight, waux, xval, wx, L, scales, res, F4, G, U, D)
        bad[t] = flag


def neighbour_tables(points, kmap, neighbours):
    """CPU layout of ggml's neighbour lists: for an off-grid u (kmap[u] < 0) its list starts at
    nstart[u] and holds nlen[u] candidates, a multiple of PAD, padded with copies of the first
    (a copy never wins the scan's strict `<`, so the choice is ggml's). nbf holds the
    candidates' float values component-major (value i of candidate j at start + i*nlen + j, so
    the eight distance terms are contiguous vector loads); nbi[start // 8 + j] is the grid
    index of candidate j."""
    p8 = points.reshape(-1, 8).astype(np.float32)
    nstart = np.zeros(KMAP_SIZE, np.int32)
    nlen = np.zeros(KMAP_SIZE, np.int32)
    fl: list[np.ndarray] = []
    il: list[np.ndarray] = []
    pos = 0
    for u in np.flatnonzero(kmap < 0):
        off = -kmap[u] - 1
        near = neighbours[off + 1: off + 1 + neighbours[off]].astype(np.int32)
        n = -(-len(near) // PAD) * PAD
        near = np.concatenate([near, np.full(n - len(near), near[0], np.int32)])
        nstart[u] = pos
        nlen[u] = n
        fl.append(p8[near].T.reshape(-1))
        il.append(near)
        pos += 8 * n
    return nstart, nlen, np.concatenate(fl), np.concatenate(il).astype(np.int32)


@functools.lru_cache(maxsize=None)
def _float_tables(qtype: str):
    t = tables(qtype)
    return t.points.astype(np.float32), neighbour_tables(t.points, t.kmap, t.neighbours)


def _run(qtype: str, rows, imatrix, threads):
    fmt = get_format(qtype)
    set_threads(threads)
    t = tables(qtype)
    valf, NT = _float_tables(qtype)
    n_rows, n_per_row = rows.shape
    x = flat(rows)
    out = np.empty(n_rows * (n_per_row // 256) * fmt.type_size, np.uint8)
    bad = np.zeros((x.size // 256 + CHUNK - 1) // CHUNK, np.bool_)
    _quantize(KIND[qtype], x, n_per_row, weights_or_dummy(imatrix), imatrix is not None,
              t.kmap, valf, NT, out, fmt.type_size, bad)
    raise_on_nonfinite(rows, bad)
    return out.reshape(n_rows, -1)


@register("IQ2_XXS", "cpu")
def iq2_xxs_cpu(rows, imatrix=None, threads=None):
    return _run("IQ2_XXS", rows, imatrix, threads)


@register("IQ2_XS", "cpu")
def iq2_xs_cpu(rows, imatrix=None, threads=None):
    return _run("IQ2_XS", rows, imatrix, threads)


@register("IQ2_S", "cpu")
def iq2_s_cpu(rows, imatrix=None, threads=None):
    return _run("IQ2_S", rows, imatrix, threads)
