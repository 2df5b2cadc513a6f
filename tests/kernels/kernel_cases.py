"""Seeded test rows for the kernel tests, and byte comparison with a readable failure message.

Each distribution targets a trap of ggml's quantizers: heavy tails, all-zero and -0.0 blocks,
constant blocks, one huge outlier, denormal and tiny values (the GROUP_MAX_EPS and fp16
underflow paths), values on and next to rounding ties (roundf vs round-half-even), and block
scales spread over nine decades. KQUANT_CASES are one row each aimed at the K-quant searches:
an all-zero super-block and sub-block, constant sub-blocks and a constant negative super-block
(the max == min exits), fp16 super-scales near overflow, denormal sub-blocks inside a normal
super-block (1/(max-min) overflows to inf), a row whose fp16 d underflows, one-signed rows.
"""
from __future__ import annotations

import numpy as np

DISTRIBUTIONS = ("normal", "student_t", "zero_blocks", "constant_blocks", "outlier", "tiny",
                 "ties", "mixed_scales")


def make_rows(dist: str, n_rows: int, n_per_row: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng([seed, DISTRIBUTIONS.index(dist)])
    shape = (n_rows, n_per_row)
    if dist == "normal":
        x = rng.standard_normal(shape) * 0.02
    elif dist == "student_t":
        x = rng.standard_t(2.0, shape)
    elif dist == "zero_blocks":
        x = rng.standard_normal(shape)
        blocks = x.reshape(n_rows, -1, 32)
        blocks[:, 0] = 0.0                          # first block of each row, every type
        blocks[:, 1] = -0.0                         # negative zeros (sign of fp16 d / m)
        blocks[rng.random(blocks.shape[:2]) < 0.3] = 0.0
        x[:, :256] = np.where(np.arange(256) < 128, 0.0, x[:, :256])  # half a super-block
        if n_per_row >= 512:
            x[0, 256:512] = 0.0                     # a whole K-quant super-block
    elif dist == "constant_blocks":
        x = rng.standard_normal(shape)
        blocks = x.reshape(n_rows, -1, 16)
        consts = rng.choice([0.5, -0.75, 3.0, -1e-3, 1.0], size=blocks.shape[:2])
        mask = rng.random(blocks.shape[:2]) < 0.5
        blocks[mask] = consts[mask][:, None]
        if n_per_row >= 512:
            x[-1, 256:512] = 0.25                   # a constant super-block
    elif dist == "outlier":
        x = rng.standard_normal(shape) * 0.05
        cols = rng.integers(0, n_per_row, n_rows)
        x[np.arange(n_rows), cols] = rng.choice([1e3, -1e4, 50.0], n_rows)
    elif dist == "tiny":
        x = rng.standard_normal(shape)
        scales = rng.choice([1e-40, 1e-38, 1e-30, 1e-12, 1e-8, 1e-6, 1e-4], size=(n_rows, n_per_row // 16, 1))
        x = (x.reshape(n_rows, -1, 16) * scales).reshape(shape)
    elif dist == "ties":
        # halves and quarters land exactly on rounding ties at many scales; nudge some by one ulp
        x = rng.integers(-32, 33, shape) / 4.0
        x = x.astype(np.float32)
        nudge = rng.random(shape)
        x = np.where(nudge < 0.2, np.nextafter(x, np.float32(np.inf)), x)
        x = np.where(nudge > 0.8, np.nextafter(x, np.float32(-np.inf)), x)
    elif dist == "mixed_scales":
        x = rng.standard_normal(shape)
        scales = 10.0 ** rng.uniform(-6, 3, size=(n_rows, n_per_row // 16, 1))
        x = (x.reshape(n_rows, -1, 16) * scales).reshape(shape)
    else:
        raise ValueError(dist)
    return np.ascontiguousarray(x, dtype=np.float32)


def make_imatrix(n_per_row: int, seed: int = 0) -> np.ndarray:
    """Positive importances spread over three decades, a tenth of them zero (unused columns)."""
    rng = np.random.default_rng([seed, 99])
    im = 10.0 ** rng.uniform(-2, 1, n_per_row)
    im[rng.random(n_per_row) < 0.1] = 0.0
    return im.astype(np.float32)


def needed_imatrix(qtype: str, n_per_row: int) -> np.ndarray | None:
    """None, or for the types llama.cpp refuses to quantize without an importance matrix
    (IQ2_XXS, IQ2_XS, IQ1_S) a plain one (all ones): what tests that are not about the imatrix
    pass so every type runs."""
    from quantdesk import kernels
    return np.ones(n_per_row, np.float32) if kernels.get_format(qtype).needs_imatrix else None


def all_rows(n_rows: int, n_per_row: int, seed: int = 0) -> np.ndarray:
    """Every distribution stacked: n_rows rows each."""
    return np.concatenate([make_rows(d, n_rows, n_per_row, seed) for d in DISTRIBUTIONS])


def mismatch(ours: np.ndarray, theirs: np.ndarray, type_size: int, what: str) -> str | None:
    """None when identical, else how many blocks differ and the first one, both byte strings."""
    if ours.shape != theirs.shape:
        return f"{what}: shape {ours.shape} != oracle {theirs.shape}"
    a = np.ascontiguousarray(ours).reshape(-1, type_size)
    b = np.ascontiguousarray(theirs).reshape(-1, type_size)
    bad = np.flatnonzero((a != b).any(axis=1))
    if not bad.size:
        return None
    i = int(bad[0])
    return (f"{what}: {bad.size} of {len(a)} blocks differ; first is block {i}\n"
            f"  ours:   {a[i].tobytes().hex()}\n  oracle: {b[i].tobytes().hex()}")


KQUANT_CASES = ("normal", "student_t", "zero_blocks", "constant", "outlier", "denormal_subblock",
                "tiny_row", "positive", "negative", "ties", "mixed_scales", "normal_2")


def kquant_rows(n_per_row: int = 512, seed: int = 0) -> np.ndarray:
    """One row per KQUANT_CASES entry (n_per_row >= 512), aimed at the K-quant searches."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(KQUANT_CASES), n_per_row))
    r = {name: i for i, name in enumerate(KQUANT_CASES)}
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


def kquant_imatrix(n_per_row: int = 512, seed: int = 1) -> np.ndarray:
    """Squared uniform importances, 5% zero (the K-quant cases' imatrix)."""
    rng = np.random.default_rng(seed)
    im = rng.random(n_per_row) ** 2 + 0.01
    im[rng.random(n_per_row) < 0.05] = 0.0
    return im.astype(np.float32)
