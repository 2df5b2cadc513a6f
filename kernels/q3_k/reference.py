"""Numpy reference (the spec) for Q3_K: 256-weight super-blocks of 16 sub-blocks of 16.

ggml-quants.c: without an imatrix quantize_row_q3_K_ref (make_q3_quants per sub-block, scales
quantized to 6 bits against the largest); with one quantize_row_q3_K_impl (make_qx_quants with
weights qw * sqrt(2*mean(x^2) + x^2), then the scales themselves quantized by make_qx_quants
weighted by each sub-block's weight sum). Both re-quantize the weights against the rounded
scales. Layout: {uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; fp16 d}.
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from ..types import get_format

QK_K = get_format("Q3_K").block_size


def pack_scales(ls: np.ndarray) -> np.ndarray:
    """16 six-bit scales (blocks, 16) -> ggml's 12 bytes: low nibbles of 0..7 and 8..15 share
    bytes 0..7, the top two bits of scale j go to byte 8 + j%4 at bit 2*(j/4)."""
    ls = ls.astype(np.uint32)
    out = np.zeros((ls.shape[0], 12), np.uint32)
    out[:, :8] = (ls[:, :8] & 0xF) | ((ls[:, 8:] & 0xF) << 4)
    for j in range(16):
        out[:, 8 + j % 4] |= (ls[:, j] >> 4) << (2 * (j // 4))
    return out.astype(np.uint8)


def finish(x: np.ndarray, L: np.ndarray, ls: np.ndarray, d_bits: np.ndarray) -> np.ndarray:
    """Re-quantize against the rounded scales and pack (shared by both paths)."""
    sc = ls.astype(np.int32) - 32
    with np.errstate(all="ignore"):
        d = d_bits.view(np.float16).astype(np.float32)[:, None] * sc.astype(np.float32)
        q = np.clip(c.nearest_int(x.reshape(-1, 16, 16) / d[:, :, None]), -4, 3) + 4
    L = np.where((d != 0)[:, :, None], q, L.reshape(-1, 16, 16)).reshape(-1, QK_K)
    high = L > 3
    hbits = high.reshape(-1, 8, 32).astype(np.uint32) << np.arange(8, dtype=np.uint32)[None, :, None]
    hmask = np.bitwise_or.reduce(hbits, axis=1).astype(np.uint8)      # bit j//32 of byte j%32
    qs = c.pack_2bit_groups(np.where(high, L - 4, L))
    return np.concatenate([hmask, qs, pack_scales(ls),
                           d_bits.astype(np.uint16).view(np.uint8).reshape(-1, 2)], axis=1)


def _ref(x: np.ndarray) -> np.ndarray:
    scales, L = c.make_q3_quants(x.reshape(-1, 16), 4)
    scales = scales.reshape(-1, 16)
    _, max_scale = c.first_absmax(scales)
    nz = max_scale != 0
    with np.errstate(all="ignore"):
        iscale = (F32(-32) / max_scale).astype(np.float32)
        l = c.nearest_int(iscale[:, None] * scales).astype(np.int8).astype(np.int32)
        ls = np.clip(l, -32, 31) + 32
        d_bits = c.fp16_bits(F32(1) / iscale)
    ls = np.where(nz[:, None], ls, 0)
    d_bits = np.where(nz, d_bits, np.uint16(0)).astype(np.uint16)
    return finish(x, L, ls, d_bits)


def _weighted(x: np.ndarray, qw: np.ndarray) -> np.ndarray:
    sigma2 = (F32(2) * c.seq_sum(x * x) / F32(QK_K)).astype(np.float32)
    w = (qw * np.sqrt(sigma2[:, None] + x * x)).astype(np.float32)
    sw = c.seq_sum(w.reshape(-1, 16, 16)).astype(np.float32)           # (blocks, 16)
    scales, L = c.make_qx_quants(x.reshape(-1, 16), 4, w.reshape(-1, 16))
    d_block, ls = c.make_qx_quants(scales.reshape(-1, 16), 32, sw)
    return finish(x, L, ls, c.fp16_bits(d_block))


@register("Q3_K", "reference")
def q3_k(rows, imatrix=None, threads=None):
    x = c.f32(rows).reshape(-1, QK_K)
    if imatrix is None:
        out = _ref(x)
    else:
        qw = np.broadcast_to(imatrix.reshape(1, -1), rows.shape).reshape(-1, QK_K)
        out = _weighted(x, qw)
    return out.reshape(rows.shape[0], -1)
