"""Idefics3 / SmolVLM: a SigLIP tower, then a pixel shuffle by `scale_factor` and one linear
projection without bias (`idefics3`).

The checkpoint names are the base model's own (`model.vision_model.*`, `model.connector.*`), which
gguf-py's MMPROJ map knows as they are; the text model lives under `model.text_model.*`.
"""
from __future__ import annotations

from .base import VisionAdapter

# SmolVLM2's vision_config (model_type smolvlm_vision) leaves these at transformers' defaults
_SMOLVLM2_DEFAULTS = {"hidden_size": 1152, "num_attention_heads": 16, "intermediate_size": 3072}


class Idefics3Vision(VisionAdapter):
    projector_type = "idefics3"
    prefixes = ("model.vision_model.", "model.connector.")

    def __init__(self, cfg: dict, preprocessor: dict):
        vision = cfg.get("vision_config")
        if isinstance(vision, dict) and vision.get("model_type") == "smolvlm_vision":
            cfg = {**cfg, "vision_config": {**_SMOLVLM2_DEFAULTS, **vision}}
        super().__init__(cfg, preprocessor)

    def plain(self, hf_name: str) -> str:
        return hf_name      # gguf-py maps the model.-prefixed names directly

    def forced_type(self, hf_name: str, gguf_name: str, ftype: str) -> str | None:
        if ".embeddings." in hf_name:       # patch and position embeddings, at every file type
            return "F32"
        return super().forced_type(hf_name, gguf_name, ftype)

    def add_hparams(self, gw) -> None:
        super().add_hparams(gw)
        # the pinned converter's defaults (transformers' Idefics3VisionConfig says 1e-6; every
        # released config states its own)
        gw.add_vision_attention_layernorm_eps(float(self.vision.get("layer_norm_eps", 1e-5)))
        gw.add_vision_projector_scale_factor(int(self.cfg.get("scale_factor", 2)))
        gw.add_vision_use_gelu(True)
        # the longest edge an image is resized to before it is cut into image_size tiles
        size = self.pre.get("size")
        longest = size.get("longest_edge") if isinstance(size, dict) else None
        gw.add_vision_preproc_image_size(int(longest or self.vision["image_size"]))
