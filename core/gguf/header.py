"""What a GGUF header holds, as plain Python values: no memory map, no numpy, nothing borrowed.

Value and tensor type ids are gguf-py's (`GGUFValueType`, `GGMLQuantizationType`); the ids are
spelled here as numbers so that importing this package does not import gguf/numpy (the window
must appear fast). tests/gguf/test_reader.py checks them against gguf-py.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

# GGUFValueType ids.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)


@cache
def ggml_types() -> dict[int, tuple[str, int, int]]:
    """GGML tensor type id -> (name, block size, type size), from gguf-py's constants."""
    from gguf.constants import GGML_QUANT_SIZES
    return {int(t): (t.name, block, size) for t, (block, size) in GGML_QUANT_SIZES.items()}


@dataclass(frozen=True)
class ArrayInfo:
    """A long metadata array (vocabulary, merges) that was skipped: its element type id and length."""
    type: int
    count: int


_UINT64_END = 1 << 64


def metadata_count(value, default=0):
    """A count or size from the metadata (block count, head counts, lengths) as an int, or
    `default` when the value cannot be one: ints (not bools) and finite whole-or-not floats in
    [0, 2**64), the largest such item of a per-layer list. NaN, infinities, negatives, strings,
    bools, skipped arrays and anything past uint64 give `default`, so no caller meets a
    ValueError (int(nan)), an OverflowError (int(inf), 1e300 * a float) or a TypeError."""
    if isinstance(value, list):
        items = [metadata_count(v, None) for v in value]
        items = [v for v in items if v is not None]
        return max(items) if items else default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if isinstance(value, float):
        if not 0 <= value < _UINT64_END:   # False for NaN too
            return default
        return int(value)
    return value if 0 <= value < _UINT64_END else default


def array_length(value) -> int:
    """Length of a metadata array whether kept as a list or skipped as an ArrayInfo; 0 otherwise."""
    if isinstance(value, list):
        return len(value)
    return value.count if isinstance(value, ArrayInfo) else 0


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor-table entry. Sizes are exact: the reader checked type and shape."""
    name: str
    shape: tuple[int, ...]   # GGUF order: shape[0] is the row length (ne0)
    ggml_type: int           # GGMLQuantizationType value
    offset: int              # from the start of the data section
    n_elements: int
    n_bytes: int

    @property
    def n_dims(self) -> int:
        return len(self.shape)

    @property
    def type_name(self) -> str:
        """"Q4_K", "F32", ..."""
        return ggml_types()[self.ggml_type][0]


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict                   # key -> int | float | bool | str | list | ArrayInfo
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_offset: int                 # where tensor data begins (after alignment padding)

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @property
    def data_bytes(self) -> int:
        """Bytes the data section must hold: each tensor after the previous one, padded to the
        alignment (what llama.cpp requires), the last one unpadded."""
        total = last = 0
        for t in self.tensors:
            last = total + t.n_bytes
            total = -(-last // self.alignment) * self.alignment
        return last
