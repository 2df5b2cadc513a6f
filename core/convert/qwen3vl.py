"""The language model of Qwen3-VL (dense: `qwen3vl`; mixture of experts: `qwen3vlmoe`), the way
llama.cpp's converter writes it (conversion/qwen3vl.py).

The layer is Qwen3's (per-head q/k RMS norms) with interleaved multimodal rope ("imrope"): the
rope sections come from text_config's `mrope_section`; text tokens use one position in every
section, so for text the rotation is plain rope. llama.cpp also needs `n_deepstack_layers` (the
number of vision layers whose features are added to the first text layers' outputs:
vision_config's `deepstack_visual_indexes`); for text tokens those inputs are zero. Tensors sit
under `model.language_model.`; the vision tower (`model.visual.`) goes to the mmproj file.
Qwen3-VL-MoE stores its experts fused and transposed (input x output): gate_up_proj
(n_expert, n_embd, 2 * n_ff) and down_proj (n_expert, n_ff, n_embd), transposed one expert at a
time while streaming.
"""
from __future__ import annotations

import re
from typing import Any

from .architectures import Qwen3
from .tensor_plan import fused_gate_up_down

_FUSED = re.compile(r"^(?:model\.)?(?:language_model\.)?(?:model\.)?layers\.(\d+)\.mlp\.experts\."
                    r"(gate_up_proj|down_proj)(?:\.weight)?$")


class Qwen3VL(Qwen3):
    gguf_arch = "qwen3vl"

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        rope = self.cfg.get("rope_scaling") or self.cfg.get("rope_parameters") or {}
        sections = list(rope.get("mrope_section") or [])
        if sections:
            gw.add_rope_dimension_sections((sections + [0, 0, 0, 0])[:4])
        vision = self.cfg.get("vision_config") if isinstance(self.cfg.get("vision_config"), dict) else {}
        gw.add_num_deepstack_layers(len(vision.get("deepstack_visual_indexes") or []))

    def skip(self, hf_name: str) -> bool:
        return super().skip(hf_name) or "visual." in hf_name

    def gguf_name(self, hf_name: str) -> str:
        # the converter's renaming: "thinker." and "language_model." dropped
        return super().gguf_name(hf_name.replace("thinker.", "", 1).replace("language_model.", "", 1))


class Qwen3VLMoe(Qwen3VL):
    gguf_arch = "qwen3vlmoe"

    def packed_tensors(self, ckpt) -> tuple[list, set[str]]:
        return fused_gate_up_down(ckpt, _FUSED, "model.layers.{i}.mlp.experts.", self.gguf_name)
