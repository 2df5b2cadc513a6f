"""numba CPU kernels for IQ2_XXS, IQ2_XS and IQ2_S: block_ops compiled as njit, one super-block
after another, independent super-blocks spread over threads (prange over runs of CHUNK).

The grid searches are data-dependent (a neighbour list per off-grid octet, of 1 to 292 points),
so a super-block is one scalar walk, as in ggml; the bytes never depend on the thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads, weights_or_dummy
from ..types import get_format
from . import block_ops as ops
from .grid import tables

CHUNK = 16                       # super-blocks per prange item
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)
KIND = {"IQ2_XXS": 0, "IQ2_XS": 1, "IQ2_S": 2}


@njit(parallel=True, **_JIT)
def _quantize(kind, x, n_per_row, qw, use_w, kmap, nbrs, slab, out, size, bad):
    n_sb = x.size // 256
    per_row = n_per_row // 256
    n_chunks = (n_sb + CHUNK - 1) // CHUNK
    for t in prange(n_chunks):
        weight = np.empty(32, np.float32)
        waux = np.empty(32, np.float32)
        xval = np.empty(32, np.float32)
        L = np.empty(32, np.int64)
        Laux = np.empty(32, np.int64)
        Lq = np.empty(32, np.uint8)
        scales = np.empty(16, np.float32)
        res = np.empty(4, np.float32)
        on = np.empty(4, np.int64)
        d2 = np.empty(ops.MAX_LIST, np.float32)
        flag = False
        for s in range(t * CHUNK, min(n_sb, t * CHUNK + CHUNK)):
            for j in range(256):
                flag |= nonfinite(x[s * 256 + j])
            qwo = (s % per_row) * 256
            if kind == 0:
                ops.iq2_xxs_block(x, s * 256, qw, qwo, kmap, nbrs, slab, out, s * size,
                                  weight, waux, xval, L, Laux, Lq, scales, res, d2)
            else:
                ops.iq2_16_block(kind == 2, x, s * 256, use_w, qw, qwo, kmap, nbrs, slab, out,
                                 s * size, weight, waux, xval, L, Laux, on, scales, res, d2)
        bad[t] = flag


def _run(qtype: str, rows, imatrix, threads):
    fmt = get_format(qtype)
    set_threads(threads)
    t = tables(qtype)
    n_rows, n_per_row = rows.shape
    x = flat(rows)
    out = np.empty(n_rows * (n_per_row // 256) * fmt.type_size, np.uint8)
    bad = np.zeros((x.size // 256 + CHUNK - 1) // CHUNK, np.bool_)
    _quantize(KIND[qtype], x, n_per_row, weights_or_dummy(imatrix), imatrix is not None,
              t.kmap, t.neighbours, t.slab, out, fmt.type_size, bad)
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
