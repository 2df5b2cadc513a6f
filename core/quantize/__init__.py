"""Quantization: llama.cpp's per-tensor type mix and a streaming writer on our own kernels.

    result = quantize_model("path/to/hf-folder-or.gguf", "out.gguf", "Q4_K_M",
                            backend="auto", threads=None, imatrix=None,
                            progress=callback, cancel=CancelToken())

`progress` receives `Progress` (bytes done/total, ETA); `cancel.cancel()` from any thread stops it.
Failures raise ConvertError (one line); nothing partial is left behind. What each output type
would cost before running it is the planner's `retype` (same `tensor_types`), priced for a source
by quantdesk.core.runtime.quantize.
"""
from __future__ import annotations

from ..convert import ConvertError
from .mix import FILE_TYPES, FileType, file_type, tensor_bytes, tensor_types
from .progress import CancelToken, Progress
from .writer import Cancelled, QuantizeResult, quantize_model

__all__ = ["quantize_model", "tensor_types", "tensor_bytes", "FILE_TYPES", "FileType",
           "file_type", "Progress", "CancelToken", "Cancelled", "QuantizeResult", "ConvertError"]
