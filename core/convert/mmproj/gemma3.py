"""Gemma 3: a SigLIP tower, then average pooling, an RMS norm and one projection (`gemma3`)."""
from __future__ import annotations

import numpy as np

from .base import VisionAdapter


class Gemma3Vision(VisionAdapter):
    projector_type = "gemma3"

    def keep(self, hf_name: str) -> bool:
        # tiny test checkpoints carry an unused SigLIP pooling head
        return super().keep(hf_name) and "vision_model.head." not in hf_name

    def gguf_name(self, hf_name: str) -> str:
        return super().gguf_name(hf_name.replace("_weight", ".weight"))  # mm_input_projection_weight

    def transform(self, hf_name: str, x: np.ndarray) -> np.ndarray:
        # Gemma's RMS norm multiplies by (1 + w); llama.cpp's by w. Only the projector's norm is
        # Gemma's own: the SigLIP norms are plain layer norms.
        return x + 1 if "soft_emb_norm" in hf_name else x

    def forced_type(self, hf_name: str, gguf_name: str, ftype: str) -> str | None:
        if "input_projection" in hf_name:
            return "F16"
        if ".embeddings." in hf_name:
            return "F32"
        return super().forced_type(hf_name, gguf_name, ftype)

    def add_hparams(self, gw) -> None:
        super().add_hparams(gw)
        gw.add_vision_attention_layernorm_eps(float(self.vision.get("layer_norm_eps", 1e-6)))
        gw.add_vision_use_gelu(True)
        # tokens per image: image_seq_length (256 in every release); written only when a
        # shrunk checkpoint pools by other than llama.cpp's default 4
        per_side = int(int(self.pre.get("image_seq_length", 256)) ** 0.5)
        factor = (int(self.vision["image_size"]) // int(self.vision["patch_size"])) // per_side
        if factor > 0 and factor != 4:
            gw.add_vision_projector_scale_factor(factor)
