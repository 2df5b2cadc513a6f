"""Dense families whose layer differs from llama's in more than names: StarCoder2, Command-R,
GLM-4, EXAONE 3, and the text model of Mistral 3. Each writes the keys llama.cpp's converter
writes for it (conversion/<family>.py of the pinned llama.cpp) and nothing llama.cpp does not read.
"""
from __future__ import annotations

from typing import Any

from .architectures import Adapter, add_rope_scaling


class TextModel(Adapter):
    """llama.cpp's TextModel: the common keys only, q/k left as stored (the family's rope
    already turns the pairs llama.cpp turns), tokenizer.json before tokenizer.model."""
    prefer_spm = False
    permute_qk = False

    def add_arch_hparams(self, gw: Any) -> None:
        add_rope_scaling(gw, self.cfg.get("rope_scaling") or {}, yarn_details=True)

    def rotary_dims(self) -> int:
        factor = self.cfg.get("partial_rotary_factor")
        rope = self.cfg.get("rope_parameters")
        if factor is None and isinstance(rope, dict):
            factor = rope.get("partial_rotary_factor")
        return int(self.head_dim * float(1.0 if factor is None else factor))


class StarCoder2(TextModel):
    """LayerNorm with biases, biases on every projection, a GELU MLP (c_fc, c_proj); NEOX rope."""
    gguf_arch = "starcoder2"


class CommandR(TextModel):
    """Cohere: LayerNorm without bias, attention and MLP in parallel from one norm, logits
    scaled, output tied to the embeddings (llama.cpp never reads lm_head); adjacent-pair rope."""
    gguf_arch = "command-r"

    def __init__(self, cfg: dict):
        # llama.cpp's converter: max_position_embeddings says 8192, the model was trained on 128k
        if cfg.get("model_max_length") is not None:
            cfg = {**cfg, "max_position_embeddings": cfg["model_max_length"]}
        super().__init__(cfg)

    def add_arch_hparams(self, gw: Any) -> None:
        import gguf
        gw.add_logit_scale(float(self.cfg.get("logit_scale", 1.0)))
        gw.add_rope_scaling_type(gguf.RopeScalingType.NONE)

    def skip(self, hf_name: str) -> bool:
        return super().skip(hf_name) or hf_name == "lm_head.weight"


class Cohere2(CommandR):
    """Command R7B / Command A: Command-R with sliding-window attention on 3 layers of 4 (llama.cpp
    fixes the pattern) and no rope on the global 4th; biases are all zero and left out."""
    gguf_arch = "cohere2"

    def add_arch_hparams(self, gw: Any) -> None:
        import gguf
        c = self.cfg
        gw.add_logit_scale(float(c.get("logit_scale", 1.0)))
        gw.add_sliding_window(int(c["sliding_window"]))
        if self.vocab_size:
            gw.add_vocab_size(int(self.vocab_size))
        gw.add_rope_dimension_count(int(float(c.get("rotary_pct", 1.0)) * (self.n_embd // self.n_head)))
        gw.add_rope_scaling_type(gguf.RopeScalingType.NONE)

    def skip(self, hf_name: str) -> bool:
        return super().skip(hf_name) or hf_name.endswith(".bias")


class Glm4(TextModel):
    """GLM-4 (0414): norms after attention and after the MLP as well as before, fused gate|up kept
    fused (llama.cpp's ffn_up is 2 * n_ff), rope on the first half of each head in adjacent pairs."""
    gguf_arch = "glm4"

    def __init__(self, cfg: dict):
        if cfg.get("partial_rotary_factor") is None:
            cfg = {**cfg, "partial_rotary_factor": 0.5}   # the converter's default for GLM-4
        super().__init__(cfg)

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        gw.add_rope_dimension_count(self.rotary_dims())


class Exaone(TextModel):
    """EXAONE 3/3.5: the llama layer under GPT-2 names (transformer.h.N), NEOX rope; its RMSNorm
    epsilon is stored as layer_norm_epsilon, which llama.cpp reads as the RMS epsilon."""
    gguf_arch = "exaone"

    def __init__(self, cfg: dict):
        cfg = dict(cfg)
        eps = cfg.pop("layer_norm_epsilon", None)
        if eps is not None and cfg.get("rms_norm_eps") is None:
            cfg["rms_norm_eps"] = eps
        super().__init__(cfg)

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        gw.add_rope_dimension_count(self.rotary_dims())


class Mistral3Text(Adapter):
    """The language model of Mistral3ForConditionalGeneration (Mistral Small 3.x): the llama
    layer, q/k permuted like llama, written as llama.cpp's `mistral3`. The vision tower and
    projector are left out (an mmproj file is llama.cpp's separate converter run)."""
    gguf_arch = "mistral3"

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        rope = self.cfg.get("rope_parameters") or self.cfg.get("rope_scaling") or {}
        if self.cfg.get("model_type") == "ministral3" and isinstance(rope, dict):
            if rope.get("mscale_all_dim") is not None:
                gw.add_rope_scaling_yarn_log_mul(float(rope["mscale_all_dim"]))
            if rope.get("llama_4_scaling_beta") is not None:
                gw.add_attn_temperature_scale(float(rope["llama_4_scaling_beta"]))

    def skip(self, hf_name: str) -> bool:
        return (super().skip(hf_name) or "vision_tower" in hf_name
                or "multi_modal_projector" in hf_name)

    def _text_name(self, hf_name: str) -> str:
        # transformers v4: language_model.model.layers...; v5: model.language_model.layers...
        return hf_name.replace("model.language_model.", "model.", 1).replace("language_model.", "", 1)

    def gguf_name(self, hf_name: str) -> str:
        return super().gguf_name(self._text_name(hf_name))


class Idefics3Text(Adapter):
    """The language model of Idefics3 / SmolVLM (Idefics3ForConditionalGeneration,
    SmolVLMForConditionalGeneration): a llama under `model.text_model.`, configured by
    `text_config`, with lm_head at the top; written as `llama`, as the pinned converter does
    (it converts text_config's VLlama3ForCausalLM). Vision tower and connector are left out."""

    def __init__(self, cfg: dict):
        # SmolVLM2's text_config omits num_attention_heads: transformers' LlamaConfig default,
        # as the pinned converter fills in
        super().__init__({"num_attention_heads": 32, **cfg})

    def skip(self, hf_name: str) -> bool:
        return super().skip(hf_name) or "vision_model." in hf_name or "connector." in hf_name

    def gguf_name(self, hf_name: str) -> str:
        return super().gguf_name(hf_name.replace("text_model.", "", 1))
