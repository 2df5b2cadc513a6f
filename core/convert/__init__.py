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

__all__ = ["open_source", "conversion_refusal", "architecture_refusal", "ConvertError", "AlreadyQuantized", "Source", "SourceTensor",
           "ModelParams", "SUPPORTED_ARCHITECTURES"]

SUPPORTED_ARCHITECTURES = tuple(ADAPTERS)


def conversion_refusal(cfg: dict) -> str | None:
    """Why an HF checkpoint with this config.json cannot be converted (one line), or None when its
    architecture is in the registry and its quantization (if any) is one we dequantize. Judged
    from the config alone (Discover asks before anything else is downloaded)."""
    from .dequant import check_quantization
    from .registry import adapter_for
    try:
        adapter_for(cfg)
        check_quantization(cfg)
    except ConvertError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a config no adapter can read: say so, in one line
        return f"config.json cannot be read as this architecture's configuration ({type(exc).__name__})"
    return None


def architecture_refusal(cfg: dict) -> str | None:
    """The same verdict from the few config keys the hub lists with each search result
    (`architectures`, `quantization_config`): is the architecture in the registry and the
    quantization one we read? The dimensions are not judged (the hub does not list them)."""
    from .dequant import check_quantization
    from .registry import ADAPTERS, adapter_for
    archs = cfg.get("architectures")
    if not isinstance(archs, list) or not archs:
        return "config.json names no architecture"
    if not any(isinstance(a, str) and a in ADAPTERS for a in archs):
        try:
            adapter_for(cfg)          # the registry's own one-line refusal
        except ConvertError as exc:
            return str(exc)
    try:
        check_quantization(cfg)
    except ConvertError as exc:
        return str(exc)
    return None


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
