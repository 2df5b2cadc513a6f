"""Qwen3-VL (dense and MoE): projector type `qwen3vl_merger`. A ViT with 2-D M-RoPE, a learned
position embedding (a square grid, bilinearly resized to the image by llama.cpp), LayerNorms and a
GELU MLP; the Conv3D patch embedding over two frames (with a bias); then the merger (norm, 2x2
patches concatenated, a 2-layer GELU MLP) and one "deepstack" merger per layer listed in
`deepstack_visual_indexes` (norm after the 2x2 concatenation) whose outputs libmtmd appends to
each image token's embedding, for the language model to add to its first layers' outputs.

As the pinned converter writes it (conversion/qwen3vl.py): qkv stays fused; the Conv3D kernel is
split into two 2-D kernels; the merger is `v.post_ln` + `mm.0` / `mm.2`; deepstack merger k is
written under its tower layer's index, `v.deepstack.{deepstack_visual_indexes[k]}.*`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import ConvertError
from .qwenvl import MERGE, QwenVisionTower

_MERGER = {"norm": "v.post_ln", "linear_fc1": "mm.0", "linear_fc2": "mm.2"}
_DEEPSTACK = {"norm": "norm", "linear_fc1": "fc1", "linear_fc2": "fc2"}


class Qwen3VLVision(QwenVisionTower):
    projector_type = "qwen3vl_merger"
    graph = "Qwen3-VL"

    def __init__(self, cfg: dict, preprocessor: dict):
        super().__init__(cfg, preprocessor)
        ds = self.vision.get("deepstack_visual_indexes") or []
        if not isinstance(ds, list) or not all(isinstance(i, int) and 0 <= i < self.block_count for i in ds):
            raise ConvertError(f"vision_config deepstack_visual_indexes {ds!r} are not layers of "
                               f"the {self.block_count}-layer tower")
        self.deepstack = ds

    def default_image_size(self, vision: dict) -> int:
        # the pinned converter's: sqrt(grid cells) * patch size
        return int(int(vision.get("num_position_embeddings", 2304)) ** 0.5
                   * int(vision.get("patch_size", 16)))

    def tensors(self, hf_name: str, shape: tuple[int, ...]
                ) -> list[tuple[str, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]]:
        plain = self.plain(hf_name)
        same = lambda x: x   # noqa: E731
        if plain.startswith("visual.deepstack_merger_list."):
            k, part, suffix = plain.split(".", 2)[2].split(".", 2)
            if part not in _DEEPSTACK or int(k) >= len(self.deepstack):
                raise ConvertError(f"vision tensor {hf_name} is not one of the "
                                   f"{len(self.deepstack)} deepstack mergers' norm / linear_fc1 / linear_fc2")
            return [(f"v.deepstack.{self.deepstack[int(k)]}.{_DEEPSTACK[part]}.{suffix}", tuple(shape), same)]
        if plain.startswith("visual.merger."):
            part, suffix = plain.split(".", 2)[2].split(".", 1)
            if part not in _MERGER:
                raise ConvertError(f"vision tensor {hf_name} is not the merger's norm / linear_fc1 / linear_fc2")
            return [(f"{_MERGER[part]}.{suffix}", tuple(shape), same)]
        if plain == "visual.patch_embed.proj.bias":
            return [("v.patch_embd.bias", tuple(shape), same)]
        return super().tensors(hf_name, shape)   # the Conv3D kernel split, the rest by name

    def add_hparams(self, gw) -> None:
        super().add_hparams(gw)
        gw.add_vision_use_gelu(True)
        gw.add_vision_spatial_merge_size(int(self.vision.get("spatial_merge_size", MERGE)))
        # the pinned converter takes text_config's rms_norm_eps for the vision norms (HF: 1e-6)
        text = self.cfg.get("text_config") or {}
        gw.add_vision_attention_layernorm_eps(float(text.get("rms_norm_eps", 1e-6)))
        gw.add_vision_is_deepstack_layers([i in self.deepstack for i in range(self.block_count)])

