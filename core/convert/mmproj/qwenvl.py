"""Qwen2-VL and Qwen2.5-VL: a ViT with 2-D M-RoPE whose patch embedding is a Conv3D over two
frames, then the merger (norm, 2x2 patches concatenated, a 2-layer GELU MLP) -- projector types
`qwen2vl_merger` and `qwen2.5vl_merger`. Qwen2.5 adds RMS norms, a SiLU-gated MLP and window
attention in all blocks but those in `fullatt_block_indexes`.

What llama.cpp's clip graph needs, as the pinned converter writes it: the fused qkv split into
q / k / v; the Conv3D kernel split into two 2-D kernels (`v.patch_embd.weight` for frame 0,
`v.patch_embd.weight.1` for frame 1; a still image is fed to both, as the HF processor repeats it).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ConvertError
from .base import VisionAdapter

# llama.cpp's qwen2vl graph hard-codes these (clip.cpp / models/qwen2vl.cpp)
MERGE, _FRAMES, _WINDOW_PX = 2, 2, 112   # MERGE: also the Qwen3-VL graph's


class QwenVisionTower(VisionAdapter):
    """What every Qwen-VL tower shares: Qwen's vision_config names (num_heads, depth), the 2x2
    merge over 2 frames llama.cpp's graphs hard-code, and the Conv3D patch kernel split into two
    2-D kernels (`v.patch_embd.weight` for frame 0, `v.patch_embd.weight.1` for frame 1)."""
    prefixes = ("visual.",)
    graph = "Qwen-VL"        # named in the refusals

    def __init__(self, cfg: dict, preprocessor: dict):
        super().__init__(cfg, preprocessor)
        # the pinned converter's renames of vision_config (Qwen's own key names)
        v = dict(self.vision)
        if "image_size" not in v:
            v["image_size"] = self.default_image_size(v)
        v["num_attention_heads"] = v.get("num_heads")
        v["num_hidden_layers"] = v.get("depth")
        self.vision = v
        for key, want in (("spatial_merge_size", MERGE), ("temporal_patch_size", _FRAMES)):
            if int(v.get(key, want)) != want:
                raise ConvertError(f"vision_config {key} is {v[key]}; llama.cpp's {self.graph} "
                                   f"graph supports only {want}")

    def default_image_size(self, vision: dict) -> int:
        return 560

    def tensors(self, hf_name: str, shape: tuple[int, ...]
                ) -> list[tuple[str, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]]:
        if self.plain(hf_name) == "visual.patch_embed.proj.weight":
            if len(shape) != 5 or shape[2] != _FRAMES:
                raise ConvertError(f"{hf_name} has shape {shape}; expected a Conv3D kernel over "
                                   f"{_FRAMES} frames")
            out = (shape[0], shape[1], *shape[3:])
            return [("v.patch_embd.weight", out, lambda x: x[:, :, 0]),
                    ("v.patch_embd.weight.1", out, lambda x: x[:, :, 1])]
        return super().tensors(hf_name, shape)


class Qwen2VLVision(QwenVisionTower):
    projector_type = "qwen2vl_merger"

    def __init__(self, cfg: dict, preprocessor: dict):
        super().__init__(cfg, preprocessor)
        v = self.vision
        if "embed_dim" in v:
            # Qwen2-VL: embed_dim is the tower width, hidden_size the merger's output; the pinned
            # converter writes the latter as feed_forward_length (clip.cpp does not read it here)
            v["intermediate_size"], v["hidden_size"] = v.get("hidden_size"), v["embed_dim"]

    def tensors(self, hf_name: str, shape: tuple[int, ...]
                ) -> list[tuple[str, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]]:
        plain = self.plain(hf_name)
        if ".attn.qkv." in plain:
            if shape[0] % 3:
                raise ConvertError(f"{hf_name} has {shape[0]} rows, not 3 equal q/k/v parts")
            c = shape[0] // 3
            return [(self.gguf_name(plain.replace(".qkv.", f".{part}.")), (c, *shape[1:]),
                     lambda x, i=i: x[i * c:(i + 1) * c])
                    for i, part in enumerate("qkv")]
        return super().tensors(hf_name, shape)

    def forced_type(self, hf_name: str, gguf_name: str, ftype: str) -> str | None:
        if ".position_embd." in gguf_name:
            return "F32"
        return super().forced_type(hf_name, gguf_name, ftype)

    def add_hparams(self, gw) -> None:
        super().add_hparams(gw)
        self.add_projector_keys(gw)
        # the pinned converter takes the text model's top-level rms_norm_eps (HF's vision norms
        # use 1e-6, which every release's text config also has)
        gw.add_vision_attention_layernorm_eps(float(self.cfg.get("rms_norm_eps", 1e-6)))

    def add_projector_keys(self, gw) -> None:
        pass


class Qwen25VLVision(Qwen2VLVision):
    projector_type = "qwen2.5vl_merger"

    def __init__(self, cfg: dict, preprocessor: dict):
        super().__init__(cfg, preprocessor)
        full = self.vision.get("fullatt_block_indexes")
        if not isinstance(full, list) or not full or not all(isinstance(i, int) for i in full):
            raise ConvertError("vision_config lacks fullatt_block_indexes (Qwen2.5-VL's full "
                               "attention blocks)")
        # llama.cpp stores one period: block i attends fully when (i + 1) % n_wa_pattern == 0
        self.n_wa_pattern = full[0] + 1
        if any(b - a != self.n_wa_pattern for a, b in zip(full, full[1:])):
            raise ConvertError(f"fullatt_block_indexes {full} are not evenly spaced; llama.cpp "
                               "supports only a regular full/window attention pattern")
        window = int(self.vision.get("window_size", _WINDOW_PX))
        if window != _WINDOW_PX:
            raise ConvertError(f"vision_config window_size is {window}; llama.cpp's Qwen2.5-VL "
                               f"graph uses {_WINDOW_PX}-pixel windows")

    def add_projector_keys(self, gw) -> None:
        gw.add_vision_use_silu(True)
        gw.add_vision_n_wa_pattern(self.n_wa_pattern)
