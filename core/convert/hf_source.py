"""A Hugging Face model folder (config.json, tokenizer, safetensors) as a quantizer `Source`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .dequant import check_quantization, dequantizing, with_side_config
from .errors import ConvertError
from .expected_tensors import check_tensors
from .registry import adapter_for
from .safetensors import SafetensorsCheckpoint
from .source import ModelParams, Source, SourceTensor
from .tensor_plan import plan_tensors
from .vocab import add_vocab, has_tokenizer


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def open_hf_folder(folder: Path) -> Source:
    folder = Path(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConvertError(f"{folder.name} has no config.json") from None
    except (OSError, ValueError) as exc:
        raise ConvertError(f"config.json in {folder.name} cannot be read: {exc}") from None
    adapter = adapter_for(cfg)  # refuses an unsupported architecture before touching weights
    cfg = with_side_config(cfg, folder)
    check_quantization(cfg)     # and an unsupported quantization method (bitsandbytes, ...)
    if not has_tokenizer(folder):
        raise ConvertError(f"no tokenizer in {folder.name} (tokenizer.json or tokenizer.model)")
    # FP8 / GPTQ / AWQ layers appear as float32 tensors decoded chunk by chunk
    ckpt = dequantizing(SafetensorsCheckpoint(folder), cfg)

    tensors = plan_tensors(ckpt, adapter)
    extra = []
    for name, load, shape in adapter.extra_tensors():
        tensors.append(SourceTensor(name=name, shape=shape, dtype="F32", nbytes=0, load=load))
        extra.append(name)
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConvertError(f"two checkpoint tensors map to {dup}")
    shapes = {t.name: tuple(t.shape) for t in tensors}
    n_vocab = _vocab_size(adapter, shapes)
    check_tensors(adapter, shapes, n_vocab, tuple(extra))   # before a byte is written

    model_name = str(cfg.get("_name_or_path") or folder.name).rstrip("/").split("/")[-1] or folder.name

    def write_metadata(gw: Any) -> None:
        gw.add_type("model")
        gw.add_name(model_name)
        adapter.add_hparams(gw)
        add_vocab(gw, folder, n_vocab, prefer_spm=adapter.prefer_spm)

    params = ModelParams(arch=adapter.gguf_arch, n_layer=adapter.n_layer, n_head=adapter.n_head,
                         n_head_kv=adapter.n_head_kv,
                         n_expert=adapter.n_expert)
    return Source(path=folder, name=model_name, params=params, tensors=tensors,
                  write_metadata=write_metadata, source_bytes=sum(t.nbytes for t in tensors),
                  close=ckpt.close)


def _vocab_size(adapter, shapes: dict[str, tuple[int, ...]]) -> int | None:
    """The number of tokens the GGUF gets: config.json's vocab_size, else the embedding's rows
    (llama.cpp requires token_embd to have exactly one row per vocabulary entry)."""
    value = adapter.vocab_size
    if value is None:
        embd = shapes.get("token_embd.weight")
        return embd[0] if embd else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConvertError(f"config.json's vocab_size {value!r} is not a positive integer")
    return value
