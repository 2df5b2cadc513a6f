"""Quantization: llama.cpp's per-tensor type mix and a streaming writer on our own kernels.

    result = quantize_model("path/to/hf-folder-or.gguf", "out.gguf", "Q4_K_M",
                            backend="auto", threads=None, imatrix=None,
                            progress=callback, cancel=CancelToken())

`progress` receives `Progress` (bytes done/total, ETA); `cancel.cancel()` from any thread stops it.
Failures raise ConvertError (one line); nothing partial is left behind.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..convert import ConvertError
from .mix import FILE_TYPES, FileType, file_type, plan_types
from .progress import CancelToken, Progress
from .writer import Cancelled, QuantizeResult, quantize_model

__all__ = ["quantize_model", "plan_types", "FILE_TYPES", "FileType", "file_type", "Progress",
           "CancelToken", "Cancelled", "QuantizeResult", "ConvertError", "estimate_size",
           "type_options", "TypeOption"]


@dataclass(frozen=True)
class TypeOption:
    """One row of the Quantize page's type table."""
    name: str               # "Q4_K_M"
    size_bytes: int         # expected tensor data of the output for this model
    bits_per_weight: float  # size_bytes * 8 / parameters, with llama.cpp's per-tensor mix
    note: str               # one-line quality note
    kernels_ready: bool     # False while a kernel this mix needs is not registered


def estimate_size(source, qtype: str) -> int:
    """Bytes of tensor data `qtype` would produce for an open Source (mix included)."""
    from quantdesk.kernels import row_bytes
    types = plan_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype, source.params)
    total = 0
    for t in source.tensors:
        n_rows = int(np.prod(t.shape[:-1], dtype=np.int64)) if len(t.shape) > 1 else 1
        total += n_rows * row_bytes(types[t.name], t.shape[-1])
    return total


def type_options(source, backend: str = "cpu") -> list[TypeOption]:
    """Every output type with its size and bits/weight for this model (cheap: no data read)."""
    from quantdesk.kernels import registry
    have = {q for q, _ in registry.available(backend)} | {"F32", "F16", "BF16"}
    n_params = sum(int(np.prod(t.shape, dtype=np.int64)) for t in source.tensors) or 1
    out = []
    for ft in FILE_TYPES.values():
        types = plan_types([(t.name, t.shape, t.dtype) for t in source.tensors], ft.name,
                           source.params)
        size = estimate_size(source, ft.name)
        out.append(TypeOption(ft.name, size, size * 8 / n_params, ft.note,
                              set(types.values()) <= have | {t.dtype for t in source.tensors}))
    return out
