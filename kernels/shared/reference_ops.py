"""Helpers shared by the numpy reference kernels: ggml's rounding, fp16 conversion, sequential
float32 sums and the weighted scale searches of ggml-quants.c, vectorised over blocks.

Byte identity with llama.cpp rests on a few rules every reference kernel follows:
- float32 everywhere: every constant is an np.float32, so numpy never promotes to float64;
- a sum is taken in ggml's order (element 0, 1, 2, ...): numpy's pairwise `sum` would round
  differently, so we loop over the elements of a block and vectorise across blocks instead;
- `nearest_int` is ggml's "add 1.5*2**23 and read the mantissa" trick (round half to even, and
  the same garbage as ggml outside +-2**22), `roundf` rounds half away from zero;
- fp32 -> fp16 rounds to nearest even (numpy's astype does, and so does ggml's converter).
The libggml-base that llama-cpp-python ships is built without FMA, so a*b+c is two roundings.
"""
from __future__ import annotations

import numpy as np

F32 = np.float32
GROUP_MAX_EPS = F32(1e-15)
_MAGIC = F32(12582912.0)   # 1.5 * 2**23


def f32(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float32)


def nearest_int(v: np.ndarray) -> np.ndarray:
    """ggml's nearest_int on float32 values (vectorised), as int32. For |v| <= 4194303 this
    is round-half-to-even; for inf/NaN/huge v it is the same garbage C computes, which later
    clamps turn into the same levels."""
    with np.errstate(all="ignore"):
        val = np.ascontiguousarray(f32(v) + _MAGIC, dtype=np.float32)
    return (val.view(np.int32) & 0x007FFFFF) - 0x00400000


def roundf(v: np.ndarray) -> np.ndarray:
    """C roundf: half away from zero (float32 in, float32 out)."""
    # floor(|v| + 0.5) is wrong for 0.49999997 (the add rounds up): compare the fraction instead.
    v = f32(v)
    a = np.abs(v)
    t = np.trunc(a)
    with np.errstate(invalid="ignore"):   # inf - inf for the overflowed 1/d of denormal blocks
        r = np.where(a - t >= F32(0.5), t + F32(1), t).astype(np.float32)
    return np.copysign(r, v).astype(np.float32)


def fp16_bits(v: np.ndarray) -> np.ndarray:
    """float32 -> IEEE half bits (uint16), round to nearest even, like GGML_FP32_TO_FP16."""
    with np.errstate(over="ignore"):
        return f32(v).astype(np.float16).view(np.uint16)


def fp16_value(v: np.ndarray) -> np.ndarray:
    """float32 -> float32 rounded through fp16: GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(v))."""
    return fp16_bits(v).view(np.float16).astype(np.float32)


def seq_sum(v: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sum in element order in float32 (a C `for` loop), not numpy's pairwise sum."""
    return np.add.accumulate(f32(v), axis=axis, dtype=np.float32).take(-1, axis=axis)


def first_absmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(amax, max) per row of x as ggml scans it: the first element with the largest |x|."""
    idx = np.argmax(np.abs(x), axis=-1)[..., None]
    mx = np.take_along_axis(x, idx, axis=-1)[..., 0]
    # ggml starts from max = +0.0 and only takes a strictly larger |v|: an all-(-0.0) block
    # keeps +0.0 (and Q4_0's d = max / -8 becomes -0.0).
    mx = np.where(mx != 0, mx, F32(0)).astype(np.float32)
    return np.abs(mx), mx


def make_qx_quants(x: np.ndarray, nmax: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """make_qx_quants(n, nmax, x, L, rmse_type=1, qw=w) for every row of x (blocks, n).

    Returns (scale float32 (blocks,), L int32 (blocks, n) in [0, 2*nmax)). `w` is the weight
    per element (ggml passes qw, or x*x when qw is NULL).
    """
    x, w = f32(x), f32(w)
    n = x.shape[-1]
    amax, mx = first_absmax(x)
    zero = amax < GROUP_MAX_EPS
    with np.errstate(all="ignore"):
        def quants(iscale):
            return np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1)

        def sums(lq):
            lf = lq.astype(np.float32)
            sumlx = np.zeros(x.shape[0], np.float32)
            suml2 = np.zeros(x.shape[0], np.float32)
            for i in range(n):   # ggml's order
                sumlx += w[:, i] * x[:, i] * lf[:, i]
                suml2 += w[:, i] * lf[:, i] * lf[:, i]
            return sumlx, suml2

        iscale = F32(-nmax) / mx
        lq = quants(iscale)
        sumlx, suml2 = sums(lq)
        scale = np.where(suml2 != 0, sumlx / suml2, F32(0)).astype(np.float32)
        best = scale * sumlx
        for step in range(-9, 10):
            if step == 0:
                continue
            iscale = -(F32(nmax) + F32(0.1) * F32(step)) / mx
            cand = quants(iscale)
            sumlx, suml2 = sums(cand)
            better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
            lq = np.where(better[:, None], cand, lq)
            new_scale = (sumlx / suml2).astype(np.float32)
            scale = np.where(better, new_scale, scale)
            best = np.where(better, new_scale * sumlx, best).astype(np.float32)
    lq = np.where(zero[:, None], 0, lq + nmax)
    return np.where(zero, F32(0), scale).astype(np.float32), lq.astype(np.int32)


def make_q3_quants(x: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """make_q3_quants(n, nmax, x, L, do_rmse=true) for every row of x (blocks, n).

    The per-element refinement is sequential inside a block; lanes (blocks) that have converged
    run the extra passes as no-ops, exactly as ggml's `break` would leave them.
    """
    x = f32(x)
    nb, n = x.shape
    amax, mx = first_absmax(x)
    zero = amax < GROUP_MAX_EPS
    rows = np.arange(nb)
    with np.errstate(all="ignore"):
        iscale = F32(-nmax) / mx
        lq = np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1).astype(np.int32)
        w = x * x
        sumlx = np.zeros(nb, np.float32)
        suml2 = np.zeros(nb, np.float32)
        for i in range(n):
            lf = lq[:, i].astype(np.float32)
            sumlx += w[:, i] * x[:, i] * lf
            suml2 += w[:, i] * lf * lf
        for _ in range(5):
            for i in range(n):
                wi, xi = w[:, i], x[:, i]
                li = lq[:, i].astype(np.float32)
                slx = sumlx - wi * xi * li
                sl2 = suml2 - wi * li * li
                new_l = np.clip(nearest_int(xi * sl2 / slx), -nmax, nmax - 1)
                nl = new_l.astype(np.float32)
                slx2 = slx + wi * xi * nl
                sl22 = sl2 + wi * nl * nl
                take = (slx > 0) & (new_l != lq[:, i]) & (sl22 > 0) & \
                       (slx2 * slx2 * suml2 > sumlx * sumlx * sl22)
                lq[rows, i] = np.where(take, new_l, lq[:, i])
                sumlx = np.where(take, slx2, sumlx).astype(np.float32)
                suml2 = np.where(take, sl22, suml2).astype(np.float32)
        scale = np.where(suml2 > 0, sumlx / suml2, F32(0)).astype(np.float32)
    lq = np.where(zero[:, None], 0, lq + nmax)
    return np.where(zero, F32(0), scale).astype(np.float32), lq.astype(np.int32)


def pack_nibbles(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return ((lo & 0xF) | ((hi & 0xF) << 4)).astype(np.uint8)


def pack_2bit_groups(L: np.ndarray) -> np.ndarray:
    """ggml's K-quant 2-bit packing of (blocks, 256) values into (blocks, 64) bytes:
    q[j/4 + l] = L[j+l] | L[j+l+32] << 2 | L[j+l+64] << 4 | L[j+l+96] << 6, j = 0, 128."""
    g = L.reshape(L.shape[0], 2, 4, 32).astype(np.uint32)
    q = g[:, :, 0] | (g[:, :, 1] << 2) | (g[:, :, 2] << 4) | (g[:, :, 3] << 6)
    return q.reshape(L.shape[0], 64).astype(np.uint8)


def row_sigma2(rows: np.ndarray) -> np.ndarray:
    """sum(x*x)/n_per_row per row in ggml's sequential order (the legacy imatrix paths)."""
    rows = f32(rows)
    return (seq_sum(rows * rows, axis=1) / F32(rows.shape[1])).astype(np.float32)
