"""Llama 4: a ViT with an unfold patch embedding, a class token and 2-D rope, then pixel shuffle,
a two-layer GELU adapter and one linear projection (llama.cpp's `llama4` projector)."""
from __future__ import annotations

import re

from quantdesk.core.text import shown

from ..errors import ConvertError
from .base import VisionAdapter

# names given here, not by gguf-py's block map: that map only knows block ids below the tower's
# layer count, and the adapter's fc2 is "block" 2 (absent from a 1- or 2-layer tower)
_NAMES = {
    "vision_model.vision_adapter.mlp.fc1.weight": "mm.model.mlp.1.weight",
    "vision_model.vision_adapter.mlp.fc2.weight": "mm.model.mlp.2.weight",
    # one fully connected layer despite its "_1" (as the pinned converter says)
    "multi_modal_projector.linear_1.weight": "mm.model.fc.weight",
    "vision_model.positional_embedding_vlm": "v.position_embd.weight",
}
_PRE_FFN_NORM = re.compile(r"vision_model\.model\.layers\.(\d+)\.post_attention_layernorm\.(weight|bias)")


class Llama4Vision(VisionAdapter):
    projector_type = "llama4"
    prefixes = ("vision_model.", "multi_modal_projector.")

    def __init__(self, cfg: dict, preprocessor: dict):
        super().__init__(cfg, preprocessor)
        v = self.vision
        if v.get("hidden_act", "gelu") != "gelu":
            raise ConvertError(f"Llama 4 vision hidden_act is {shown(v.get('hidden_act'))}; "
                               "llama.cpp's llama4 projector runs GELU only")
        ratio = v.get("pixel_shuffle_ratio")
        if (not isinstance(ratio, (int, float)) or not 0 < ratio <= 1
                or abs(1 / ratio - round(1 / ratio)) > 1e-6):
            raise ConvertError("Llama 4 vision_config needs a pixel_shuffle_ratio of 1/n (0.5 in "
                               f"every release), not {shown(ratio)}")
        self.scale_factor = round(1 / ratio)
        theta = v.get("rope_theta", 10000)
        if not isinstance(theta, (int, float)) or theta != 10000:
            # clip.cpp fixes the tower's rope base at 10000 for this projector
            raise ConvertError(f"Llama 4 vision rope_theta {shown(theta)} is not llama.cpp's fixed 10000")

    def gguf_name(self, hf_name: str) -> str:
        plain = self.plain(hf_name)
        if plain in _NAMES:
            return _NAMES[plain]
        pre_ffn = _PRE_FFN_NORM.fullmatch(plain)
        if pre_ffn:
            # The pre-FFN layer norm is llama.cpp's ln2. gguf-py's table also lists this HF name
            # for Gemma 4's post-attention norm (v.blk.N.attn_post_norm), that later entry wins
            # in its name map, and so the pinned converter writes attn_post_norm: clip.cpp's
            # llama4 graph then normalises the attention output instead of the FFN input.
            return f"v.blk.{pre_ffn[1]}.ln2.{pre_ffn[2]}"
        return super().gguf_name(hf_name)

    def add_hparams(self, gw) -> None:
        super().add_hparams(gw)
        gw.add_vision_attention_layernorm_eps(float(self.vision.get("norm_eps", 1e-5)))
        gw.add_vision_projector_scale_factor(self.scale_factor)
        gw.add_vision_use_gelu(True)
