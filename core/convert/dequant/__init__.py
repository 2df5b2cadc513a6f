"""Quantized checkpoints from the hub (FP8, GPTQ, AWQ), dequantized while streaming.

    cfg = with_side_config(cfg, folder)   # + AutoGPTQ's quantize_config.json / AutoAWQ's quant_config.json
    check_quantization(cfg)        # raises ConvertError naming an unsupported quant method
    ckpt = dequantizing(SafetensorsCheckpoint(folder), cfg)

`dequantizing` returns the checkpoint itself for an unquantized model, else a view of it in which
each quantized layer (`q_proj.qweight` + `qzeros` + `scales` + `g_idx`, or an fp8 `weight` +
`weight_scale_inv`) is one float32 `...weight` tensor whose rows are decoded when read, so the
writer's chunks stay the unit of memory, as for a bf16 checkpoint.
"""
from __future__ import annotations

from quantdesk.core.text import shown

from ..errors import ConvertError

SUPPORTED_METHODS = ("fp8", "gptq", "awq", "compressed-tensors")   # the last: its FP8 format only
# Methods an architecture's own adapter reads (its tensors are carried, not dequantized here):
# gpt-oss ships its experts as MXFP4 blocks, which GGUF stores as they are.
CARRIED = {"mxfp4": ("GptOssForCausalLM",)}


def quantization_config(cfg: dict) -> dict | None:
    """config.json's quantization_config (top level, or in a multimodal model's text_config)."""
    for where in (cfg, cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}):
        q = where.get("quantization_config")
        if q is not None:
            if not isinstance(q, dict):
                raise ConvertError("config.json's quantization_config is not an object")
            return q
    return None


def with_side_config(cfg: dict, folder) -> dict:
    """config.json, plus the quantization settings older exporters keep beside it: AutoGPTQ's
    quantize_config.json and AutoAWQ's quant_config.json (config.json has no quantization_config
    in those repos)."""
    import json
    from pathlib import Path
    if quantization_config(cfg) is not None:
        return cfg
    for name, method in (("quantize_config.json", "gptq"), ("quant_config.json", "awq")):
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            side = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            raise ConvertError(f"{name} in {Path(folder).name} cannot be read") from None
        if not isinstance(side, dict):
            raise ConvertError(f"{name} in {Path(folder).name} is not a JSON object")
        q = {"quant_method": method, **side}
        if method == "awq":   # AutoAWQ's own key names
            q.setdefault("bits", side.get("w_bit", 4))
            q.setdefault("group_size", side.get("q_group_size"))
        return {**cfg, "quantization_config": q}
    return cfg


def quant_method(cfg: dict) -> str | None:
    """The checkpoint's quantization method as config.json names it, or None when unquantized."""
    q = quantization_config(cfg)
    if q is None:
        return None
    method = q.get("quant_method")
    if method is None and (q.get("load_in_4bit") or q.get("load_in_8bit")):
        method = "bitsandbytes"      # transformers' older BitsAndBytesConfig leaves it out
    if not isinstance(method, str) or not method:
        raise ConvertError("config.json's quantization_config names no quant_method")
    return method.lower()


def check_quantization(cfg: dict) -> None:
    """One line saying why this checkpoint's quantization cannot be read, else nothing."""
    method = quant_method(cfg)
    if method is None or _carried(cfg, method):
        return
    if method not in SUPPORTED_METHODS:
        raise ConvertError(f"quantization method {shown(method)} is not supported "
                           f"(supported: {', '.join(SUPPORTED_METHODS)}, or an unquantized checkpoint)")
    from .view import settings
    settings(method, quantization_config(cfg))   # bits, format, block size: refused here if odd


def _carried(cfg: dict, method: str) -> bool:
    archs = cfg.get("architectures") if isinstance(cfg.get("architectures"), list) else []
    return any(a in CARRIED.get(method, ()) for a in archs)


def dequantizing(ckpt, cfg: dict):
    method = quant_method(cfg)
    if method is None or _carried(cfg, method):
        return ckpt
    check_quantization(cfg)
    from .view import DequantCheckpoint
    return DequantCheckpoint(ckpt, method, quantization_config(cfg))
