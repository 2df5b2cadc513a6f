"""Quantization: llama.cpp's per-tensor type mix and a streaming writer on our own kernels.

    result = quantize_model("path/to/hf-folder-or.gguf", "out.gguf", "Q4_K_M",
                            backend="auto", threads=None, imatrix=None,
                            progress=callback, cancel=CancelToken())

`progress` receives `Progress` (bytes done/total, ETA); `cancel.cancel()` from any thread stops it.
Failures raise ConvertError (one line); nothing partial is left behind.
"""
from __future__ import annotations

from ..convert import ConvertError
from .mix import FILE_TYPES, FileType, file_type, plan_types
from .progress import CancelToken, Progress
from .writer import Cancelled, QuantizeResult, quantize_model

__all__ = ["quantize_model", "plan_types", "FILE_TYPES", "FileType", "file_type", "Progress",
           "CancelToken", "Cancelled", "QuantizeResult", "ConvertError", "estimate_size"]


def estimate_size(source, qtype: str) -> int:
    """Bytes of tensor data `qtype` would produce for an open Source (for the type table)."""
    import numpy as np

    from quantdesk.kernels import row_bytes
    types = plan_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype, source.params)
    total = 0
    for t in source.tensors:
        n_rows = int(np.prod(t.shape[:-1], dtype=np.int64)) if len(t.shape) > 1 else 1
        total += n_rows * row_bytes(types[t.name], t.shape[-1])
    return total
