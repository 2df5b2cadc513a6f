"""Vision projectors: a multimodal HF checkpoint's vision tower as an mmproj GGUF for libmtmd.

    refusal = vision_refusal(cfg)          # None when we can write this checkpoint's mmproj
    source = open_mmproj_source(folder)    # a quantizer Source (arch "clip"), types decided here
    quantize_model(source, out, "F16")     # the usual streaming writer (.part, verify, rename)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConvertError
from ..safetensors import SafetensorsCheckpoint
from ..source import ModelParams, Source, SourceTensor
from .base import MMPROJ_FILE_TYPES, VisionAdapter
from .registry import VISION_ADAPTERS, vision_adapter_class

__all__ = ["MMPROJ_FILE_TYPES", "VISION_ADAPTERS", "VisionAdapter", "open_mmproj_source",
           "vision_refusal", "mmproj_file_name"]


def vision_refusal(cfg: dict) -> str | None:
    """Why no mmproj can be written for a checkpoint with this config.json (one line), or None."""
    try:
        vision_adapter_class(cfg)(cfg, {})     # the adapter's own config checks (no files read)
    except ConvertError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a vision_config no adapter can read: one line
        return f"config.json's vision_config cannot be read ({type(exc).__name__})"
    return None


def mmproj_file_name(model_name: str, ftype: str = "F16") -> str:
    """llama.cpp's naming: mmproj-<model>-<type>.gguf."""
    return f"mmproj-{model_name}-{ftype.lower()}.gguf"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConvertError(f"{path.name} cannot be read: {exc}") from None
    return data if isinstance(data, dict) else {}


def preprocessor_config(folder: Path) -> dict:
    """preprocessor_config.json, then processor_config.json over it (as the pinned converter)."""
    pre = _read_json(folder / "preprocessor_config.json")
    pre = {**pre, **(pre.get("media_proc_cfg") or {})}
    proc = _read_json(folder / "processor_config.json")
    proc = {**proc, **(proc.get("image_processor") or {})}
    return {**pre, **proc}


def open_mmproj_source(folder: str | Path, ftype: str = "F16") -> Source:
    """The vision tower and projector of the checkpoint in `folder`, tensors typed for `ftype`."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    ftype = ftype.upper()
    if ftype not in MMPROJ_FILE_TYPES:
        raise ConvertError(f"an mmproj is written as {', '.join(MMPROJ_FILE_TYPES)}, not {ftype}")
    cfg = _read_json(folder / "config.json")
    if not cfg:
        raise ConvertError(f"{folder.name} has no readable config.json")
    adapter = vision_adapter_class(cfg)(cfg, preprocessor_config(folder))
    adapter.folder = folder    # adapters that read tokenizer files (Pixtral's [IMG_BREAK])
    _check_hparams(adapter)
    ckpt = SafetensorsCheckpoint(folder)
    try:
        tensors, types = _plan(ckpt, adapter, ftype)
    except BaseException:
        ckpt.close()
        raise
    name = str(cfg.get("_name_or_path") or folder.name).rstrip("/").split("/")[-1] or folder.name

    def write_metadata(gw: Any) -> None:
        gw.add_type("mmproj")
        gw.add_name(name)
        adapter.add_hparams(gw)

    v = adapter.vision
    n_head = int(v.get("num_attention_heads") or v.get("num_heads") or 1)
    params = ModelParams(arch="clip", n_layer=adapter.block_count, n_head=n_head, n_head_kv=n_head)
    return Source(path=folder, name=name, params=params, tensors=tensors,
                  write_metadata=write_metadata, source_bytes=sum(t.nbytes for t in tensors),
                  close=ckpt.close, tensor_types=types)


class _KeyRecorder:
    """Takes the GGUF writer's place for a dry run of add_hparams: every add_* call is accepted
    and dropped."""
    def __getattr__(self, name: str):
        if name.startswith("add_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def _check_hparams(adapter: VisionAdapter) -> None:
    """Run the adapter's keys once before any file is opened, so a config that lacks one (the
    preprocessor's image_mean, the vision image_size, ...) is refused before anything is written
    rather than halfway through the write."""
    try:
        adapter.add_hparams(_KeyRecorder())
    except (KeyError, TypeError, ValueError) as exc:
        raise ConvertError(f"the vision config cannot be read: {type(exc).__name__} {exc}") from None


def _plan(ckpt: SafetensorsCheckpoint, adapter: VisionAdapter, ftype: str):
    tensors: list[SourceTensor] = []
    types: dict[str, str] = {}
    for hf_name in ckpt.names():
        if not adapter.keep(hf_name):
            continue
        ref = ckpt.refs[hf_name]
        if ref.dtype not in ("F32", "F16", "BF16"):
            raise ConvertError(f"vision tensor {hf_name} is {ref.dtype}; only F32, F16 and BF16 "
                               "vision towers can be converted")
        for gguf_name, shape, fn in adapter.tensors(hf_name, tuple(ref.shape)):
            if gguf_name in types:
                raise ConvertError(f"two checkpoint tensors map to {gguf_name}")
            tensors.append(SourceTensor(name=gguf_name, shape=shape, dtype="F32",
                                        nbytes=ref.nbytes * _count(shape) // max(_count(ref.shape), 1),
                                        load=lambda n=hf_name, fn=fn: fn(adapter.read(ckpt, n))))
            types[gguf_name] = adapter.tensor_type(hf_name, gguf_name, shape, ftype)
    if not tensors:
        raise ConvertError(f"no vision tower tensors found in {ckpt.folder.name}")
    return tensors, types


def _count(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
