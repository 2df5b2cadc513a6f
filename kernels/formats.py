"""Block layouts of the GGML types we produce: one description shared by every backend."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuantFormat:
    name: str
    ggml_type: int      # ggml's enum ggml_type value
    block_size: int     # weights per block
    type_size: int      # bytes per block

    @property
    def bits_per_weight(self) -> float:
        return self.type_size * 8 / self.block_size


FORMATS: dict[str, QuantFormat] = {f.name: f for f in (
    QuantFormat("F32", 0, 1, 4),
    QuantFormat("F16", 1, 1, 2),
    QuantFormat("Q4_0", 2, 32, 18),
    QuantFormat("Q4_1", 3, 32, 20),
    QuantFormat("Q5_0", 6, 32, 22),
    QuantFormat("Q5_1", 7, 32, 24),
    QuantFormat("Q8_0", 8, 32, 34),
    QuantFormat("Q2_K", 10, 256, 84),
    QuantFormat("Q3_K", 11, 256, 110),
    QuantFormat("Q4_K", 12, 256, 144),
    QuantFormat("Q5_K", 13, 256, 176),
    QuantFormat("Q6_K", 14, 256, 210),
    QuantFormat("BF16", 30, 1, 2),
)}


def get_format(qtype: str) -> QuantFormat:
    try:
        return FORMATS[qtype.upper()]
    except KeyError:
        raise ValueError(f"unknown quantization type {qtype!r}; known: {', '.join(FORMATS)}") from None


def row_bytes(qtype: str, n_per_row: int) -> int:
    """Bytes of one row of n_per_row weights; n_per_row must be a multiple of the block size."""
    fmt = get_format(qtype)
    if n_per_row % fmt.block_size:
        raise ValueError(f"{fmt.name} needs rows that are a multiple of {fmt.block_size} "
                         f"weights; got {n_per_row}")
    return n_per_row // fmt.block_size * fmt.type_size
