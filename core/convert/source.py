"""What the quantizer reads: a model as a list of tensors that load one at a time, plus metadata.

Both kinds of source (an HF folder, a GGUF file) present this same shape, so the streaming writer
never holds more than one tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class ModelParams:
    """The hyper-parameters llama.cpp's type-mix rules look at."""
    arch: str
    n_layer: int
    n_head: int
    n_head_kv: int
    n_expert: int = 0


@dataclass
class SourceTensor:
    name: str                         # GGUF tensor name
    shape: tuple[int, ...]            # numpy order: the last axis is the row (ggml's ne[0])
    dtype: str                        # GGML type of the stored data ("F32", "F16", "BF16", "Q4_K", ...)
    nbytes: int                       # bytes read from the source (progress is measured in these)
    load: Callable[[], np.ndarray]    # the values as float32 with `shape`
    raw: Callable[[], np.ndarray] | None = None  # the stored bytes, to copy a tensor unchanged
    # rows r0:r1 of the tensor seen as 2-D (n_rows, row length), float32; lets the writer stream
    # a large tensor in chunks instead of holding it whole
    load_rows: Callable[[int, int], np.ndarray] | None = None

    @property
    def n_dims(self) -> int:
        # ggml counts trailing size-1 dimensions out (ggml_n_dims)
        dims = list(self.shape)
        while len(dims) > 1 and dims[0] == 1:
            dims.pop(0)
        return len(dims)


@dataclass
class Source:
    path: Path
    name: str
    params: ModelParams
    tensors: list[SourceTensor]
    write_metadata: Callable[[Any], None]      # adds every KV pair except general.file_type
    source_bytes: int = 0
    close: Callable[[], None] = field(default=lambda: None)
    # {GGUF name: GGML type} when the source itself decides every tensor's type (an mmproj file:
    # the clip loader's rules, not llama.cpp's language-model mix)
    tensor_types: dict[str, str] | None = None
