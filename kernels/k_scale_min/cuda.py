"""numba-cuda kernels for Q2_K, Q4_K and Q5_K, byte-identical to ggml_quantize_chunk.

Two launches per tensor: `_search` runs one thread per sub-block (weights, then the
make_qkx2/qkx3 scale and min search of cuda_search); `_finish` runs one thread per super-block
with the finishing code the CPU kernels run too (superblock_ops: scale quantization, fp16
super-scales, requantization, byte packing). All float products go through `fmul`/`mul` so
nothing is contracted into an fma. Works in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)
and on a GPU. Arrays are flat: super-block s's weights are x[256*s:256*(s+1)].
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, int32

from ..registry import register
from ..shared.cuda_common import load_cuda_twin
from ..types import family_types, get_format
from .cuda_search import ZERO, fdiv, fmul, qkx_search

_superblock_ops = load_cuda_twin("k_scale_min.superblock_ops")   # one source with the CPU
finish_q2_k = _superblock_ops.finish_q2_k
finish_q45_k = _superblock_ops.finish_q45_k
QK_K = get_format("Q4_K").block_size         # 256: every type of this family


@cuda.jit
def _search(x, imatrix, has_im, G, nmax, rmin, rdelta, nstep, use_mad, sigma_twice,
            scales, mins, sws, Lg):
    """One thread per sub-block t = s*G + g: weights, then the scale/min search."""
    t = cuda.grid(1)
    S = x.shape[0] // QK_K
    if t >= S * G:
        return
    n = QK_K // G
    s = t // G
    g = t - s * G
    xs = cuda.local.array(32, float32)
    w = cuda.local.array(32, float32)
    L = cuda.local.array(32, int32)
    Laux = cuda.local.array(32, int32)
    for i in range(n):
        xs[i] = x[s * QK_K + g * n + i]
    if has_im:
        s2 = ZERO   # sigma2 over the whole super-block, in memory order, as ggml does
        for l in range(s * QK_K, (s + 1) * QK_K):
            s2 += fmul(x[l], x[l])
        sigma2 = fdiv(fmul(float32(2.0), s2) if sigma_twice else s2, float32(QK_K))
        p = (s % (imatrix.shape[0] // QK_K)) * QK_K + g * n
        for i in range(n):
            w[i] = fmul(imatrix[p + i], math.sqrt(sigma2 + fmul(xs[i], xs[i])))
    elif use_mad:   # Q2_K reference: |x|
        for i in range(n):
            w[i] = abs(xs[i])
    else:           # Q4_K/Q5_K reference: rms of the sub-block + |x|
        s2 = ZERO
        for i in range(n):
            s2 += fmul(xs[i], xs[i])
        av = math.sqrt(fdiv(s2, float32(32.0)))
        for i in range(n):
            w[i] = av + abs(xs[i])
    sw = ZERO
    for i in range(n):
        sw += w[i]
    sc, mn = qkx_search(xs, w, L, Laux, n, nmax, rmin, rdelta, nstep, use_mad, has_im)
    scales[t] = sc
    mins[t] = mn
    sws[t] = sw
    for i in range(n):
        Lg[t * n + i] = L[i]


@cuda.jit
def _finish(x, has_im, G, nmax, scales, mins, sws, Lg, out, type_size):
    """One thread per super-block s: finish_q2_k (G = 16) or finish_q45_k (G = 8), the code the
    CPU kernels run too. Sub-block j's element i is x[256*s + n*j + i], n = 256 // G."""
    s = cuda.grid(1)
    if s >= x.shape[0] // QK_K:
        return
    sc_f = cuda.local.array(16, float32)
    mn_f = cuda.local.array(16, float32)
    sw_f = cuda.local.array(16, float32)
    ls = cuda.local.array(16, int32)
    lm = cuda.local.array(16, int32)
    if G == 16:
        finish_q2_k(x, Lg, s * QK_K, 1, QK_K // 16, scales, mins, sws, s * 16, has_im, out,
                    s * type_size, sc_f, mn_f, sw_f, ls, lm)
    else:
        finish_q45_k(x, Lg, s * QK_K, 1, QK_K // 8, scales, mins, sws, s * 8, has_im, nmax, out,
                     s * type_size, sc_f, mn_f, sw_f, ls, lm)


# qtype -> (sub-blocks per super-block, nmax, no-imatrix rmin, rdelta, nstep, use_mad)
_PARAMS = {
    "Q4_K": (8, 15, -1.0, 0.1, 20, False),
    "Q5_K": (8, 31, -0.5, 0.1, 15, False),
    "Q2_K": (16, 3, -0.5, 0.1, 15, True),
}
_THREADS = 128


def quantize(qtype: str, rows: np.ndarray, imatrix: np.ndarray | None) -> np.ndarray:
    G, nmax, rmin, rdelta, nstep, use_mad = _PARAMS[qtype]
    type_size = get_format(qtype).type_size
    has_im = imatrix is not None
    if has_im:
        rmin, rdelta, nstep, use_mad = -0.9, 0.05, 36, False
    n_rows = rows.shape[0]
    if rows.size == 0:   # a launch needs at least one block
        return np.zeros((n_rows, rows.shape[1] // QK_K * type_size), np.uint8)
    x = cuda.to_device(np.ascontiguousarray(rows).reshape(-1))
    S = x.shape[0] // QK_K
    im = cuda.to_device(imatrix if has_im else np.zeros(QK_K, np.float32))
    scales = cuda.device_array(S * G, np.float32)
    mins = cuda.device_array(S * G, np.float32)
    sws = cuda.device_array(S * G, np.float32)
    Lg = cuda.device_array(S * QK_K, np.int32)
    out = cuda.device_array(S * type_size, np.uint8)
    # The simulator computes in numpy scalars, which warn where ggml quietly overflows to inf.
    with np.errstate(all="ignore"):
        _search[(S * G + _THREADS - 1) // _THREADS, _THREADS](
            x, im, has_im, G, nmax, np.float32(rmin), np.float32(rdelta), nstep, use_mad,
            qtype != "Q2_K", scales, mins, sws, Lg)
        _finish[(S + _THREADS - 1) // _THREADS, _THREADS](
            x, has_im, G, nmax, scales, mins, sws, Lg, out, type_size)
    return out.copy_to_host().reshape(n_rows, rows.shape[1] // QK_K * type_size)


def _make(qtype: str):
    @register(qtype, "cuda")
    def kernel(rows, imatrix=None, threads=None):
        return quantize(qtype, rows, imatrix)

    kernel.__name__ = f"{qtype.lower()}_cuda"
    return kernel


for _t in family_types("k_scale_min"):
    _make(_t.name)
