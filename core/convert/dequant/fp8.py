"""FP8 (e4m3) weights with their scales, as DeepSeek-V3 / Qwen3 FP8 releases store them.

`weight` is F8_E4M3 (1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no infinities, S.1111.111
is NaN) and `weight_scale_inv` holds one float32/bf16 multiplier per block of 128 x 128 weights
(config `weight_block_size`); despite its name it multiplies: w = fp8 * scale_inv. A scale of one
value (per tensor) or one per row (per channel, also as `weight_scale`) works the same way.
"""
from __future__ import annotations

import numpy as np


def _e4m3_table() -> np.ndarray:
    b = np.arange(256)
    e, m = (b >> 3) & 0xF, (b & 7).astype(np.float64)
    mag = np.where(e == 0, m / 8 * 2.0 ** -6, (1 + m / 8) * 2.0 ** (e - 7))  # e == 0: subnormal
    mag[(b & 0x7F) == 0x7F] = np.nan
    return np.where(b & 0x80, -mag, mag).astype(np.float32)


E4M3 = _e4m3_table()


def scale_rows(scale: np.ndarray, n_rows: int, n_cols: int, r0: int, r1: int,
               block: tuple[int, int] | None) -> np.ndarray:
    """The multiplier of every weight in rows r0:r1, broadcastable to (r1 - r0, n_cols).
    `scale` is the whole scale tensor (small: one value per block)."""
    scale = np.asarray(scale, dtype=np.float32)
    if scale.size == 1:
        return scale.reshape(1, 1)
    if scale.ndim == 1 or (scale.ndim == 2 and scale.shape[1] == 1 and scale.shape[0] == n_rows):
        return scale.reshape(-1, 1)[r0:r1]                       # one per row
    b0, b1 = block or (-(-n_rows // scale.shape[0]), -(-n_cols // scale.shape[1]))
    rows = scale[r0 // b0:(r1 - 1) // b0 + 1]
    rows = np.repeat(rows, b0, axis=0)[r0 - (r0 // b0) * b0:][: r1 - r0]
    return np.repeat(rows, b1, axis=1)[:, :n_cols]


def dequant_rows(raw: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 weights from fp8 bytes `raw` (rows, cols) and their broadcast scale."""
    return E4M3[raw] * scale


def check_scale(shape: tuple[int, ...], weight: tuple[int, int], block: tuple[int, int] | None) -> str | None:
    """Why a scale of `shape` cannot belong to a weight of `weight`'s shape, or None."""
    n_rows, n_cols = weight
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if size == 1 or tuple(shape) in ((n_rows,), (n_rows, 1)):
        return None
    if len(shape) != 2:
        return f"scale of shape {list(shape)}"
    if block is None:
        return None if n_rows % shape[0] == 0 and n_cols % shape[1] == 0 else \
            f"scale of shape {list(shape)} without weight_block_size"
    want = (-(-n_rows // block[0]), -(-n_cols // block[1]))
    return None if tuple(shape) == want else f"scale of shape {list(shape)}, expected {list(want)} " \
                                              f"for {block[0]}x{block[1]} blocks"
