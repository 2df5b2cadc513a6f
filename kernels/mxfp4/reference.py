"""Numpy reference (the spec) for MXFP4 (ggml-quants.c quantize_row_mxfp4_ref; quantize_mxfp4
ignores the imatrix). Layout {uint8 e; uint8 qs[16]}: qs[j] = idx(x[j]) | idx(x[j + 16]) << 4.

Per 32 weights: e = (uint8_t)(floorf(log2f(amax)) - 2 + 127) (0 for amax == 0; a negative
value converts through int as on x86: its low byte), d = GGML_E8M0_TO_FP32_HALF(e), and each
weight takes the first index of least |kvalues_mxfp4[i] * d - x|.
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from ..types import get_format
from .exponent import floor_log2

QK = get_format("MXFP4").block_size
KVALUES = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], np.float32)


def e8m0_half(e: np.ndarray) -> np.ndarray:
    bits = np.where(e < 2, 0x00200000 << e, (e - 1) << 23).astype(np.uint32)
    return bits.view(np.float32)


def scale_exponent(x: np.ndarray) -> np.ndarray:
    amax = np.abs(x).max(axis=1)
    e = np.where(amax > 0, floor_log2(np.where(amax > 0, amax, F32(1))) + 125, 0)
    return (e & 0xFF).astype(np.int64)


def best_index(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.abs(KVALUES[None, None, :] * d[:, None, None] - x[:, :, None])
    return np.argmin(err, axis=2)          # the first of equal errors, as ggml's strict `<`


@register("MXFP4", "reference")
def mxfp4(rows, imatrix=None, threads=None):
    x = c.f32(rows).reshape(-1, QK)
    e = scale_exponent(x)
    idx = best_index(x, e8m0_half(e))
    qs = (idx[:, :16] | (idx[:, 16:] << 4)).astype(np.uint8)
    out = np.concatenate([e.astype(np.uint8)[:, None], qs], axis=1)
    return out.reshape(rows.shape[0], -1)
