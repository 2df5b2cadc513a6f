"""numba CPU kernels for IQ3_XXS and IQ3_S: super-blocks spread over threads in runs (prange),
each quantized by cpu_lanes.superblock. The grid searches are data-driven (a table lookup per
group of four, then a scan of a variable neighbour list), so lanes across blocks would diverge
at once; instead the trial scales of one block are the lanes (cpu_lanes.py), and only the
neighbour scans run scalar. The bytes never depend on the thread count (each super-block is
independent)."""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from ..registry import register
from ..shared.cpu_common import flat, nonfinite, raise_on_nonfinite, set_threads, weights_or_dummy
from ..types import get_format
from .cpu_lanes import MAXT, neighbour_tables, superblock
from .grid import tables

RUN = 8                          # super-blocks per prange item
_JIT = dict(cache=True, error_model="numpy", boundscheck=False)


@njit(parallel=True, **_JIT)
def _quantize(is_s, x, n_per_row, qw, use_w, out, size, valf, kmap, NT, bad):
    n_sb = x.size // 256
    per_row = n_per_row // 256
    n_runs = (n_sb + RUN - 1) // RUN
    for t in prange(n_runs):
        weight = np.empty(32, np.float32)
        waux = np.empty(32, np.float32)
        xval = np.empty(32, np.float32)
        wx = np.empty(32, np.float32)
        L = np.empty(32, np.int32)
        F4 = np.empty((8, MAXT), np.float32)
        G = np.empty((8, MAXT), np.int32)
        U = np.empty(MAXT, np.int32)
        D = np.empty(NT[1].max(), np.int32)
        signs = np.empty(4, np.int32)
        scales = np.empty(8, np.float32)
        res = np.empty(2, np.float32)
        flag = False
        for s in range(t * RUN, min(n_sb, t * RUN + RUN)):
            for i in range(256):
                flag |= nonfinite(x[s * 256 + i])
            if flag:
                break
            superblock(x, s * 256, use_w, qw, (s % per_row) * 256, out, s * size, is_s, valf,
                       kmap, NT, weight, waux, xval, wx, L, signs, scales, F4, G, U, D, res)
        bad[t] = flag


@functools.lru_cache(maxsize=None)
def _float_tables(grid_size: int):
    values, kmap, neighbours, _ = tables(grid_size)
    return values.astype(np.float32), neighbour_tables(values, kmap, neighbours)


def _run(qtype: str, rows, imatrix, threads):
    fmt = get_format(qtype)
    is_s = qtype == "IQ3_S"
    _, kmap, _, _ = tables(512 if is_s else 256)
    valf, NT = _float_tables(512 if is_s else 256)
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    x = flat(rows)
    out = np.empty(n_rows * (n_per_row // 256) * fmt.type_size, np.uint8)
    bad = np.zeros((x.size // 256 + RUN - 1) // RUN, np.bool_)
    _quantize(is_s, x, n_per_row, weights_or_dummy(imatrix), imatrix is not None, out,
              fmt.type_size, valf, kmap, NT, bad)
    raise_on_nonfinite(rows, bad)
    return out.reshape(n_rows, -1)


@register("IQ3_XXS", "cpu")
def iq3_xxs_cpu(rows, imatrix=None, threads=None):
    return _run("IQ3_XXS", rows, imatrix, threads)


@register("IQ3_S", "cpu")
def iq3_s_cpu(rows, imatrix=None, threads=None):
    return _run("IQ3_S", rows, imatrix, threads)
