"""AWQ int4 linear layers in the GEMM format (AutoAWQ `version: "gemm"`): `qweight`, `qzeros`, `scales`.

Layout (AutoAWQ's WQLinear_GEMM):
  qweight  int32 (in, out / 8): 8 values packed along the *output* dim, interleaved: the value at
           bits 4*k of a word is output column AWQ_ORDER[k] of its group of 8 (0, 2, 4, 6, 1, 3, 5, 7);
  qzeros   int32 (in / group, out / 8), packed the same way; zero points stored as they are;
  scales   fp16 (in / group, out).
  weight[o, i] = scales[g, o] * (q[i, o] - zero[g, o]) with g = i // group_size.
"""
from __future__ import annotations

import numpy as np

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
# column j of a group of 8 sits at nibble REVERSE[j]
REVERSE = tuple(AWQ_ORDER.index(j) for j in range(8))


def unpack(packed: np.ndarray) -> np.ndarray:
    """(n, m) words → (n, m * 8) int4 values in column order."""
    shifts = np.arange(0, 32, 4, dtype=np.uint32)
    nibbles = (packed.view(np.uint32)[:, :, None] >> shifts[None, None, :]) & 15
    return nibbles[:, :, list(REVERSE)].reshape(packed.shape[0], -1).astype(np.int32)


def dequant(qweight: np.ndarray, qzeros: np.ndarray, scales: np.ndarray, group_size: int,
            lo: int, hi: int) -> np.ndarray:
    """float32 weight rows for output columns lo:hi of the words given: qweight (in, k) and
    qzeros (groups, k) hold whole words covering them (lo, hi relative to the first word's
    first column); scales (groups, hi - lo) float32. Returns (hi - lo, in)."""
    q = unpack(qweight)[:, lo:hi]
    z = unpack(qzeros)[:, lo:hi]
    g = np.arange(q.shape[0]) // group_size
    w = (q - z[g]).astype(np.float32) * scales[g]
    return np.ascontiguousarray(w.T)
