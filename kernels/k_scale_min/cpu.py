"""numba CPU kernels for Q2_K, Q4_K and Q5_K, byte-identical to ggml_quantize_chunk.

Same algorithm as the numpy spec (reference.py). Threads (prange) take batches of super-blocks;
within a batch the sub-blocks are searched side by side (shared/qkx_lanes.search_lanes, SIMD
across sub-blocks, lane layout (element, lane)), then each super-block is finished by the code
the CUDA kernels run too (superblock_ops.finish_q45_k / finish_q2_k).
"""
from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from ..registry import register
from ..shared.cpu_common import nonfinite, raise_on_nonfinite
from ..shared.qkx_lanes import JIT as _JIT
from ..shared.qkx_lanes import search_lanes
from ..types import family_types, get_format
from .superblock_ops import finish_q2_k, finish_q45_k

LANES = 64                                   # sub-blocks searched side by side per batch
KINDS = {"Q4_K": 0, "Q5_K": 1, "Q2_K": 2}
QK_K = get_format("Q4_K").block_size         # 256: every type of this family


@njit(parallel=True, **_JIT)
def _kernel(x, imatrix, has_im, kind, out, type_size, nthreads, bad):
    """x: (S, 256) super-blocks; imatrix: (n_per_row,) or dummy; out: flat (S * type_size)
    uint8; bad[batch] = NaN or Inf among the batch's weights."""
    S = x.shape[0]
    G = 16 if kind == 2 else 8
    n = QK_K // G
    nmax = 3 if kind == 2 else (15 if kind == 0 else 31)
    if has_im:
        rmin, rdelta, nstep, use_mad = -0.9, 0.05, 36, False
    elif kind == 0:
        rmin, rdelta, nstep, use_mad = -1.0, 0.1, 20, False
    elif kind == 1:
        rmin, rdelta, nstep, use_mad = -0.5, 0.1, 15, False
    else:
        rmin, rdelta, nstep, use_mad = -0.5, 0.1, 15, True
    npr = imatrix.shape[0] // QK_K if has_im else 1
    B = LANES // G
    nbatch = (S + B - 1) // B
    nwork = max(1, min(nbatch, 4 * nthreads))
    for wk in prange(nwork):
        xf = np.empty(n * LANES, np.float32)   # flat for the finishing code, 2-D for the search
        Lf = np.zeros(n * LANES, np.int32)
        xt = xf.reshape((n, LANES))
        L = Lf.reshape((n, LANES))
        wt = np.empty((n, LANES), np.float32)
        st = np.zeros((16, LANES), np.float32)
        scale_out = np.zeros(LANES, np.float32)
        min_out = np.zeros(LANES, np.float32)
        swl = np.zeros(LANES, np.float32)
        aux = np.zeros(LANES, np.float32)
        tmp_f = np.zeros((3, 16), np.float32)
        tmp_l = np.zeros((2, 16), np.int64)
        for bt in range(wk * nbatch // nwork, (wk + 1) * nbatch // nwork):
            s0 = bt * B
            nsb = min(B, S - s0)
            nl = nsb * G
            flag = False
            for b in range(nsb):
                for g in range(G):
                    for i in range(n):
                        v = x[s0 + b, g * n + i]
                        xt[i, b * G + g] = v
                        flag |= nonfinite(v)
            bad[bt] = flag
            if has_im:
                for b in range(nsb):   # sigma2 over the whole super-block, in memory order
                    s2 = np.float32(0.0)
                    for l in range(QK_K):
                        s2 += x[s0 + b, l] * x[s0 + b, l]
                    if kind == 2:
                        sig = s2 / np.float32(QK_K)
                    else:
                        sig = np.float32(2.0) * s2 / np.float32(QK_K)
                    for g in range(G):
                        aux[b * G + g] = sig
                for b in range(nsb):
                    p = ((s0 + b) % npr) * QK_K
                    for g in range(G):
                        lane = b * G + g
                        for i in range(n):
                            xv = xt[i, lane]
                            wt[i, lane] = imatrix[p + g * n + i] * np.sqrt(aux[lane] + xv * xv)
            elif kind == 2:
                for i in range(n):
                    for g in range(nl):
                        wt[i, g] = abs(xt[i, g])
            else:
                for g in range(nl):
                    aux[g] = np.float32(0.0)
                for i in range(n):
                    for g in range(nl):
                        aux[g] += xt[i, g] * xt[i, g]
                for g in range(nl):
                    aux[g] = np.sqrt(aux[g] / np.float32(32.0))
                for i in range(n):
                    for g in range(nl):
                        wt[i, g] = aux[g] + abs(xt[i, g])
            for g in range(nl):
                swl[g] = np.float32(0.0)
            for i in range(n):
                for g in range(nl):
                    swl[g] += wt[i, g]
            search_lanes(xt, wt, L, st, nl, nmax, rmin, rdelta, nstep, use_mad, has_im,
                         scale_out, min_out)
            for b in range(nsb):   # sub-block j's element i is lane b*G + j of row i
                oo = (s0 + b) * type_size
                if kind == 2:
                    finish_q2_k(xf, Lf, b * G, LANES, 1, scale_out, min_out, swl, b * G, has_im,
                                out, oo, tmp_f[0], tmp_f[1], tmp_f[2], tmp_l[0], tmp_l[1])
                else:
                    finish_q45_k(xf, Lf, b * G, LANES, 1, scale_out, min_out, swl, b * G, has_im,
                                 nmax, out, oo, tmp_f[0], tmp_f[1], tmp_f[2], tmp_l[0], tmp_l[1])


def quantize(qtype: str, rows: np.ndarray, imatrix: np.ndarray | None, threads: int | None):
    n_rows, n_per_row = rows.shape
    type_size = get_format(qtype).type_size
    x = rows.reshape(-1, QK_K)
    out = np.empty(x.shape[0] * type_size, np.uint8)
    im = np.zeros(QK_K, np.float32) if imatrix is None else imatrix
    old = get_num_threads()
    if threads:
        set_num_threads(max(1, min(threads, old)))
    bad = np.zeros(x.shape[0], np.bool_)     # per batch; a batch holds >= 1 super-block
    try:
        _kernel(x, im, imatrix is not None, KINDS[qtype], out, type_size, get_num_threads(), bad)
    finally:
        set_num_threads(old)
    raise_on_nonfinite(rows, bad)
    return out.reshape(n_rows, n_per_row // QK_K * type_size)


def _make(qtype: str):
    @register(qtype, "cpu")
    def kernel(rows, imatrix=None, threads=None):
        return quantize(qtype, rows, imatrix, threads)

    kernel.__name__ = f"{qtype.lower()}_cpu"
    return kernel


for _t in family_types("k_scale_min"):
    _make(_t.name)
