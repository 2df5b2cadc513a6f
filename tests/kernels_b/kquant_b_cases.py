"""Seeded rows for the Q2_K/Q4_K/Q5_K tests and a byte comparison that names the first bad block.

Each row aims at one trap of the K-quant searches: heavy tails, an all-zero super-block and
sub-block, constant sub-blocks and a constant negative super-block (the max == min early exits),
one huge outlier (fp16 super-scales near overflow), denormal sub-blocks inside a normal
super-block (1/(max-min) overflows to inf), tiny rows (fp16 d underflows to 0), one-signed rows
(the min clamp), and values on rounding ties.
"""
from __future__ import annotations

import numpy as np

QTYPES = ("Q4_K", "Q5_K", "Q2_K")
TYPE_SIZE = {"Q4_K": 144, "Q5_K": 176, "Q2_K": 84}
CASES = ("normal", "student_t", "zero_blocks", "constant", "outlier", "denormal_subblock",
         "tiny_row", "positive", "negative", "ties", "mixed_scales", "normal_2")


def make_rows(n_per_row: int = 512, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(CASES), n_per_row))
    r = {name: i for i, name in enumerate(CASES)}
    x[r["normal"]] *= 0.02
    x[r["student_t"]] = rng.standard_t(2.0, n_per_row)
    x[r["zero_blocks"], :256] = 0.0
    x[r["zero_blocks"], 256 + 32:256 + 64] = -0.0
    x[r["constant"], :32] = 0.37
    x[r["constant"], 64:80] = -1.5
    x[r["constant"], 256:512] = -2.5
    x[r["outlier"], 5] = 3e4
    x[r["outlier"], 300] = -1e3
    x[r["denormal_subblock"], 32:64] *= 1e-41
    x[r["denormal_subblock"], 256 + 16:256 + 32] *= 1e-41
    x[r["tiny_row"]] *= 1e-20
    x[r["positive"]] = np.abs(x[r["positive"]])
    x[r["negative"]] = -np.abs(x[r["negative"]])
    x[r["ties"]] = np.round(x[r["ties"]] * 4) / 4
    x[r["mixed_scales"]] *= np.repeat(10.0 ** rng.uniform(-5, 2, n_per_row // 16), 16)
    return np.ascontiguousarray(x, dtype=np.float32)


def make_imatrix(n_per_row: int = 512, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    im = rng.random(n_per_row) ** 2 + 0.01
    im[rng.random(n_per_row) < 0.05] = 0.0
    return im.astype(np.float32)


def first_mismatch(ours: np.ndarray, theirs: np.ndarray, qtype: str, n_per_row: int) -> str | None:
    """None when identical; else how many blocks differ and the first one, with its row's case."""
    size = TYPE_SIZE[qtype]
    a, b = ours.reshape(-1, size), theirs.reshape(-1, size)
    bad = np.flatnonzero((a != b).any(axis=1))
    if not len(bad):
        return None
    i = int(bad[0])
    row = i // (n_per_row // 256)
    case = CASES[row] if row < len(CASES) else "?"
    diff = np.flatnonzero(a[i] != b[i])
    return (f"{qtype}: {len(bad)} of {len(a)} blocks differ; first is block {i} (row {row}, "
            f"case {case!r}), bytes {diff[:12].tolist()}\n  ours {a[i][:24].tolist()}\n"
            f"  ggml {b[i][:24].tolist()}")
