"""Numpy reference (the spec) for the legacy 32-weight block types Q8_0, Q4_0, Q4_1, Q5_0, Q5_1.

Follows ggml-quants.c: without an imatrix ggml_quantize_chunk takes quantize_row_*_ref (Q8_0
always does); with one, Q4_0/Q5_0 search the scale with make_qx_quants and Q4_1/Q5_1 search
scale and min with make_qkx3_quants, weighting each weight by qw * sqrt(sigma2 + x*x), where
sigma2 is the row's mean square. Layouts (little endian):
  Q8_0 {fp16 d; int8 qs[32]}              Q4_0 {fp16 d; uint8 qs[16]}
  Q4_1 {fp16 d; fp16 m; uint8 qs[16]}     Q5_0 {fp16 d; uint8 qh[4]; uint8 qs[16]}
  Q5_1 {fp16 d; fp16 m; uint8 qh[4]; uint8 qs[16]}
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from ..shared.reference_searches import make_qkx_quants
from ..types import get_format

QK = get_format("Q4_0").block_size      # 32: every legacy type


def _blocks(rows: np.ndarray) -> np.ndarray:
    return c.f32(rows).reshape(-1, QK)


def _to_int(v: np.ndarray) -> np.ndarray:
    """C's float -> int conversion as x86 does it (cvttss2si): truncate toward zero, INT_MIN for
    NaN, infinities and out-of-range values (1/d overflows to inf for denormal blocks)."""
    with np.errstate(invalid="ignore"):
        ok = (v >= F32(-2147483648.0)) & (v < F32(2147483648.0))
        return np.where(ok, np.trunc(np.where(ok, v, 0)), -2147483648).astype(np.int64)


def _to_int8(v: np.ndarray) -> np.ndarray:
    """(int8_t) of a float: the low byte of _to_int, sign-extended."""
    return ((_to_int(v) & 0xFF) ^ 0x80) - 0x80


def _min_max(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ggml's `if (v < min) min = v; if (v > max) max = v;` scan: first occurrences (the sign of
    a zero min ends up in the fp16 `m`)."""
    mn = np.take_along_axis(x, np.argmin(x, axis=1)[:, None], axis=1)[:, 0]
    mx = np.take_along_axis(x, np.argmax(x, axis=1)[:, None], axis=1)[:, 0]
    return mn, mx


def _inv(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(d != 0, F32(1) / d, F32(0)).astype(np.float32)


def _half(v: np.ndarray) -> np.ndarray:
    return c.fp16_bits(v).view(np.uint8).reshape(-1, 2)


def _qh_bytes(L: np.ndarray) -> np.ndarray:
    """Fifth bits of 32 quants as the little-endian uint32 qh (bit j <- L[j] >> 4)."""
    bits = ((L >> 4) & 1).astype(np.uint32) << np.arange(QK, dtype=np.uint32)
    return np.bitwise_or.reduce(bits, axis=1).astype("<u4").view(np.uint8).reshape(-1, 4)


def _nibbles(L: np.ndarray) -> np.ndarray:
    return c.pack_nibbles(L[:, :16], L[:, 16:])


def _weights(rows: np.ndarray, imatrix: np.ndarray) -> np.ndarray:
    """qw[j] * sqrtf(sigma2 + x[j]*x[j]) per weight, sigma2 = the row's mean square."""
    sigma2 = c.row_sigma2(rows)[:, None]
    w = imatrix[None, :] * np.sqrt(sigma2 + rows * rows)
    return w.astype(np.float32).reshape(-1, QK)


def _out(rows: np.ndarray, *parts: np.ndarray) -> np.ndarray:
    blocks = np.concatenate(parts, axis=1)
    return np.ascontiguousarray(blocks).reshape(rows.shape[0], -1)


@register("Q8_0", "reference")
def q8_0(rows, imatrix=None, threads=None):
    x = _blocks(rows)
    amax = np.abs(x).max(axis=1)
    d = (amax / F32(127)).astype(np.float32)
    qs = (_to_int(c.roundf(x * _inv(d)[:, None])) & 0xFF).astype(np.uint8)
    return _out(rows, _half(d), qs)


def _absmax_scaled(x: np.ndarray, div: float) -> tuple[np.ndarray, np.ndarray]:
    """d = max / -div, where max is the first value of largest magnitude; and 1/d."""
    _, mx = c.first_absmax(x)
    d = (mx / F32(-div)).astype(np.float32)
    return d, _inv(d)


@register("Q4_0", "reference")
def q4_0(rows, imatrix=None, threads=None):
    x = _blocks(rows)
    if imatrix is None:
        d, inv = _absmax_scaled(x, 8)
        L = np.minimum(15, _to_int8(x * inv[:, None] + F32(8.5)))
    else:
        d, L = c.make_qx_quants(x, 8, _weights(rows, imatrix))
    return _out(rows, _half(d), _nibbles(L))


@register("Q5_0", "reference")
def q5_0(rows, imatrix=None, threads=None):
    x = _blocks(rows)
    if imatrix is None:
        d, inv = _absmax_scaled(x, 16)
        L = np.minimum(31, _to_int8(x * inv[:, None] + F32(16.5)))
    else:
        d, L = c.make_qx_quants(x, 16, _weights(rows, imatrix))
    return _out(rows, _half(d), _qh_bytes(L), _nibbles(L))


def _affine(rows, imatrix, nmax: int):
    """(d, m, L) of the Q4_1 (nmax 15) / Q5_1 (nmax 31) block: ref path or weighted search."""
    x = _blocks(rows)
    if imatrix is None:
        mn, mx = _min_max(x)
        d = ((mx - mn) / F32(nmax)).astype(np.float32)
        with np.errstate(invalid="ignore"):   # 0 * inf in the overflowed 1/d of denormal blocks
            q = (x - mn[:, None]) * _inv(d)[:, None] + F32(0.5)
        # Q4_1: MIN(15, (int8_t)q); Q5_1 has no clamp, just a (uint8_t) cast
        L = np.minimum(15, _to_int8(q)) if nmax == 15 else _to_int(q) & 0xFF
        return d, mn, L
    d, the_min, L = make_qkx_quants(x, _weights(rows, imatrix), nmax, -0.9, 0.05, 36,
                                      use_mad=False, qkx3=True)
    return d, -the_min, L


@register("Q4_1", "reference")
def q4_1(rows, imatrix=None, threads=None):
    d, m, L = _affine(rows, imatrix, 15)
    return _out(rows, _half(d), _half(m), _nibbles(L))


@register("Q5_1", "reference")
def q5_1(rows, imatrix=None, threads=None):
    d, m, L = _affine(rows, imatrix, 31)
    return _out(rows, _half(d), _half(m), _qh_bytes(L), _nibbles(L))
