"""Model sources for quantization: a Hugging Face folder (safetensors) or an F32/F16/BF16 GGUF.

    source = open_source(path)          # raises ConvertError with one line for the user
    source.tensors                      # SourceTensor list, each loaded on demand as float32
    source.write_metadata(gguf_writer)  # architecture keys, tokenizer, chat template

The streaming writer in quantdesk.core.quantize turns a Source into a .gguf file.
"""
from __future__ import annotations

from pathlib import Path

from .registry import ADAPTERS
from .errors import AlreadyQuantized, ConvertError
from .source import ModelParams, Source, SourceTensor

__all__ = ["open_source", "ConvertError", "AlreadyQuantized", "Source", "SourceTensor",
           "ModelParams", "SUPPORTED_ARCHITECTURES"]

SUPPORTED_ARCHITECTURES = tuple(ADAPTERS)


def open_source(path: str | Path, *, allow_requantize: bool = False) -> Source:
    """Open an HF model folder or a GGUF file; validates before any output is written."""
    path = Path(path)
    if not path.exists():
        raise ConvertError(f"{path} does not exist")
    if path.is_dir():
        from .hf_source import open_hf_folder
        return open_hf_folder(path)
    if path.name == "config.json":
        from .hf_source import open_hf_folder
        return open_hf_folder(path.parent)
    if path.suffix.lower() == ".safetensors":
        from .hf_source import open_hf_folder
        return open_hf_folder(path.parent)
    from .gguf_source import open_gguf
    return open_gguf(path, allow_requantize=allow_requantize)
