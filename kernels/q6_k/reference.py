"""Numpy reference (the spec) for Q6_K: 256-weight super-blocks of 16 sub-blocks of 16.

ggml-quants.c quantize_row_q6_K_ref / quantize_row_q6_K_impl: each sub-block's scale comes from
make_qx_quants(16, 32, x, L, rmse_type=1, qw) with qw = the imatrix slice, or x*x without one;
the 16 scales are quantized to int8 against the largest one and the weights re-quantized
against the rounded scales. Layout: {uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d}.
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ..shared import reference_ops as c
from ..shared.reference_ops import F32
from ..types import get_format

QK_K = get_format("Q6_K").block_size


def pack_q6_k(L: np.ndarray, sc: np.ndarray, d_bits: np.ndarray) -> np.ndarray:
    """(blocks, 256) quants in [0, 64), int8 scales (blocks, 16), fp16 bits (blocks,) -> bytes."""
    L = L.astype(np.uint32).reshape(-1, 2, 4, 32)          # [half][quarter][l]
    lo = L & 0xF
    ql = np.concatenate([lo[:, :, 0] | (lo[:, :, 2] << 4), lo[:, :, 1] | (lo[:, :, 3] << 4)],
                        axis=2)                             # per half: ql[l], ql[l+32]
    qh = ((L[:, :, 0] >> 4) | ((L[:, :, 1] >> 4) << 2) | ((L[:, :, 2] >> 4) << 4)
          | ((L[:, :, 3] >> 4) << 6))
    n = L.shape[0]
    return np.concatenate([ql.reshape(n, 128).astype(np.uint8), qh.reshape(n, 64).astype(np.uint8),
                           sc.astype(np.int8).view(np.uint8).reshape(n, 16),
                           d_bits.astype(np.uint16).view(np.uint8).reshape(n, 2)], axis=1)


@register("Q6_K", "reference")
def q6_k(rows, imatrix=None, threads=None):
    n_rows, n_per_row = rows.shape
    x = c.f32(rows).reshape(-1, QK_K)
    sub = x.reshape(-1, 16)
    if imatrix is None:
        w = sub * sub
    else:
        w = np.broadcast_to(imatrix.reshape(1, -1), rows.shape).reshape(-1, 16)
    scales, L = c.make_qx_quants(sub, 32, w)
    scales = scales.reshape(-1, 16)
    L = L.reshape(-1, QK_K)
    max_abs, max_scale = c.first_absmax(scales)
    zero = max_abs < c.GROUP_MAX_EPS
    with np.errstate(all="ignore"):
        iscale = (F32(-128) / max_scale).astype(np.float32)
        d_bits = c.fp16_bits(F32(1) / iscale)
        sc = np.minimum(127, c.nearest_int(iscale[:, None] * scales))
        d = c.fp16_value(F32(1) / iscale)[:, None] * sc.astype(np.float32)   # (blocks, 16)
        q = np.clip(c.nearest_int(x.reshape(-1, 16, 16) / d[:, :, None]), -32, 31) + 32
    L = np.where((d != 0)[:, :, None], q, L.reshape(-1, 16, 16)).reshape(-1, QK_K)
    out = pack_q6_k(L, sc, d_bits)
    out[zero] = 0
    return out.reshape(n_rows, -1)
