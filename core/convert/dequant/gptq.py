"""GPTQ int4 (and 2/8-bit) linear layers: `qweight`, `qzeros`, `scales`, optional `g_idx`.

Layout (AutoGPTQ / GPTQModel, the facts llama.cpp's converter also follows):
  qweight  int32 (in / pf, out): pf = 32 / bits values packed along the *input* dim, value i of a
           word at bits 4*i (for 4 bits), lowest first;
  qzeros   int32 (groups, out / pf): zero points packed along the *output* dim the same way;
           checkpoint_format "gptq" (v1, the default) stores zero - 1, "gptq_v2" the zero itself;
  scales   fp16 (groups, out);
  g_idx    int32 (in,): the group of each input column (act-order / desc_act reorders them);
           absent means input column i is in group i // group_size.
  weight[o, i] = scales[g, o] * (q[i, o] - zero[g, o]) with g = g_idx[i].
"""
from __future__ import annotations

import numpy as np

BITS = (2, 4, 8)


def unpack_rows(packed: np.ndarray, bits: int) -> np.ndarray:
    """(n, m) words → (n * pf, m) values: word row k holds values k*pf .. k*pf+pf-1 of each column."""
    pf = 32 // bits
    shifts = np.arange(0, 32, bits, dtype=np.uint32)
    vals = (packed.view(np.uint32)[:, None, :] >> shifts[None, :, None]) & ((1 << bits) - 1)
    return vals.reshape(packed.shape[0] * pf, packed.shape[1]).astype(np.int32)


def unpack_cols(packed: np.ndarray, bits: int) -> np.ndarray:
    """(n, m) words → (n, m * pf): word column k holds columns k*pf .. k*pf+pf-1."""
    shifts = np.arange(0, 32, bits, dtype=np.uint32)
    vals = (packed.view(np.uint32)[:, :, None] >> shifts[None, None, :]) & ((1 << bits) - 1)
    return vals.reshape(packed.shape[0], -1).astype(np.int32)


def dequant(qweight: np.ndarray, zeros: np.ndarray, scales: np.ndarray, g_idx: np.ndarray,
            bits: int) -> np.ndarray:
    """float32 weight rows (out columns c0:c1 of the packed layer), given its columns:
    qweight (in / pf, n) words; zeros (groups, n) already unpacked (and +1 for v1);
    scales (groups, n) float32; g_idx (in,). Returns (n, in)."""
    q = unpack_rows(qweight, bits)                              # (in, n)
    w = (q - zeros[g_idx]).astype(np.float32) * scales[g_idx]
    return np.ascontiguousarray(w.T)
