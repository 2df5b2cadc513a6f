"""Numpy reference (the spec) for TQ1_0 and TQ2_0 (ggml-quants.c quantize_row_tq{1,2}_0_ref;
quantize_tq*_0 ignore the imatrix).

Per 256 weights: d = max|x| stored as fp16, each weight becomes lroundf(x / d) + 1 in {0, 1, 2}
(a block whose 1/d overflows gives lroundf(inf or NaN) = LONG_MIN on x86-64 glibc, so the
trit is the low int of LONG_MIN + 1: 1).
TQ1_0 {uint8 qs[48]; uint8 qh[4]; fp16 d}: qs[m] = 5 trits x[m + 32n] (n = 0..4, first trit
most significant) for m < 32 over x[0:160], qs[32 + m] the same with stride 16 over x[160:240],
qh[j] = 4 trits x[240 + j + 4m] then *3; every byte is then ceil(q * 256 / 243).
TQ2_0 {uint8 qs[64]; fp16 d}: qs[32h + m] = sum_n trit(x[128h + m + 32n]) << 2n.
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from ..types import get_format

QK_K = get_format("TQ2_0").block_size


def trits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fp16 bits of d, trits (blocks, 256)) for blocks of 256 weights."""
    amax = np.abs(x).max(axis=1)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = np.where(amax != 0, F32(1) / amax, F32(0)).astype(F32)
        v = (x * inv[:, None]).astype(F32)
        small = np.abs(v) < F32(2.0 ** 31)
        r = np.where(small, c.roundf(np.where(small, v, 0)).astype(np.int64) + 1, 1)
    return c.fp16_bits(amax), r


def ternary_bytes(t: np.ndarray, extra_shift: bool = False) -> np.ndarray:
    """(blocks, n, m) trits -> (blocks, m) bytes: base-3 digits, first most significant, in uint8
    arithmetic, then ceil(q * 256 / 243)."""
    q = np.zeros(t.shape[::2], np.int64)
    for n in range(t.shape[1]):
        q = (q * 3 + t[:, n]) & 0xFF
    if extra_shift:
        q = (q * 3) & 0xFF
    return (((q * 256 + 242) // 243) & 0xFF).astype(np.uint8)


@register("TQ1_0", "reference")
def tq1_0(rows, imatrix=None, threads=None):
    x = c.f32(rows).reshape(-1, QK_K)
    d, t = trits(x)
    b = x.shape[0]
    out = np.concatenate([ternary_bytes(t[:, :160].reshape(b, 5, 32)),
                          ternary_bytes(t[:, 160:240].reshape(b, 5, 16)),
                          ternary_bytes(t[:, 240:].reshape(b, 4, 4), extra_shift=True),
                          d.view(np.uint8).reshape(-1, 2)], axis=1)
    return out.reshape(rows.shape[0], -1)


@register("TQ2_0", "reference")
def tq2_0(rows, imatrix=None, threads=None):
    x = c.f32(rows).reshape(-1, QK_K)
    d, t = trits(x)
    g = (t.reshape(-1, 2, 4, 32) & 3) << (2 * np.arange(4))[None, None, :, None]
    qs = g.sum(axis=2).reshape(-1, 64).astype(np.uint8)
    out = np.concatenate([qs, d.view(np.uint8).reshape(-1, 2)], axis=1)
    return out.reshape(rows.shape[0], -1)
