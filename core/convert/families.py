"""Families that are variants of the adapters in `architectures`: each says only what differs from
its parent (the GGUF architecture, extra keys, a fused tensor to split), following the choices of
llama.cpp's converter. Mixture-of-experts families need nothing special here: their per-expert
tensors are stacked by `tensor_plan`, and the expert keys are written by `Adapter.add_hparams`.
"""
from __future__ import annotations

from typing import Any

from .architectures import Adapter, Gemma2, Qwen2, Qwen3


class Mixtral(Adapter):
    """The llama graph with `block_sparse_moe` experts (w1 gate, w3 up, w2 down)."""


class Granite(Adapter):
    gguf_arch = "granite"

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        c = self.cfg
        if c.get("attention_multiplier"):
            gw.add_attention_scale(float(c["attention_multiplier"]))
        if c.get("embedding_multiplier"):
            gw.add_embedding_scale(float(c["embedding_multiplier"]))
        if c.get("residual_multiplier"):
            gw.add_residual_scale(float(c["residual_multiplier"]))
        if c.get("logits_scaling"):
            gw.add_logit_scale(float(c["logits_scaling"]))


class GraniteMoe(Granite):
    """Granite with experts stored fused: input_linear (n_expert, 2 * n_ff, n_embd) = gate | up."""
    gguf_arch = "granitemoe"

    def split(self, hf_name: str, shape: tuple[int, ...]):
        if not hf_name.endswith("block_sparse_moe.input_linear.weight"):
            return None
        i = hf_name.split(".")[2]
        n_ff = shape[-2] // 2
        return [(f"blk.{i}.ffn_gate_exps.weight", 0, n_ff), (f"blk.{i}.ffn_up_exps.weight", n_ff, 2 * n_ff)]

    def gguf_name(self, hf_name: str) -> str:
        if hf_name.endswith("block_sparse_moe.output_linear.weight"):
            return f"blk.{hf_name.split('.')[2]}.ffn_down_exps.weight"
        return super().gguf_name(hf_name)


class SmolLM3(Adapter):
    """Llama with rope left out on every 4th layer (llama.cpp's smollm3 graph fixes the step)."""
    gguf_arch = "smollm3"


class Arcee(Adapter):
    """Llama with a ReLU² MLP (up, down; no gate)."""
    gguf_arch = "arcee"


class Qwen2Moe(Qwen2):
    """Qwen2 with experts plus one shared expert behind a sigmoid gate."""
    gguf_arch = "qwen2moe"


class Qwen3Moe(Qwen3):
    gguf_arch = "qwen3moe"


class Olmo2(Qwen2):
    """Norms after attention and after the MLP (not before), q/k RMS-normed over all heads."""
    gguf_arch = "olmo2"

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        c = self.cfg
        if c.get("sliding_window") is not None and "olmo3" in str(c.get("model_type", "")):
            gw.add_sliding_window(int(c["sliding_window"]))
            types = c.get("layer_types") or ["sliding_attention" if (i + 1) % 4 else "full_attention"
                                             for i in range(self.n_layer)]
            gw.add_sliding_window_pattern([t == "sliding_attention" for t in types])


class Olmoe(Qwen2):
    """Pre-norm like llama, q/k RMS-normed over all heads, 64 small experts."""
    gguf_arch = "olmoe"

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        gw.add_layer_norm_rms_eps(1e-5)   # llama.cpp's converter writes this constant for OLMoE


class Gemma(Gemma2):
    """Gemma 1: Gemma 2 without the post-norms and soft-capping."""
    gguf_arch = "gemma"

    def add_arch_hparams(self, gw: Any) -> None:
        if self.cfg.get("head_dim") is None:
            gw.add_key_length(self.head_dim)
            gw.add_value_length(self.head_dim)
        gw.add_add_space_prefix(False)


class Ernie45(Adapter):
    """ERNIE 4.5 dense: the llama layer, with q/k already in llama.cpp's rope order (adjacent pairs)."""
    gguf_arch = "ernie4_5"
    permute_qk = False

    def gguf_name(self, hf_name: str) -> str:
        return super().gguf_name(hf_name.replace("ernie.", "model.", 1))


class Qwen2VL(Qwen2):
    """The language model of Qwen2-VL / Qwen2.5-VL: Qwen2 with multimodal rope (M-RoPE), whose
    sections llama.cpp needs; text tokens use one position in every section. The vision tower
    is left out (llama.cpp's mmproj is a separate file)."""
    gguf_arch = "qwen2vl"

    def add_arch_hparams(self, gw: Any) -> None:
        rope = self.cfg.get("rope_scaling") or self.cfg.get("rope_parameters") or {}
        sections = list(rope.get("mrope_section") or [])
        if sections:
            gw.add_rope_dimension_sections((sections + [0, 0, 0, 0])[:4])

    def skip(self, hf_name: str) -> bool:
        return super().skip(hf_name) or hf_name.startswith(("visual.", "model.visual."))

    def gguf_name(self, hf_name: str) -> str:
        return super().gguf_name(hf_name.replace("model.language_model.", "model.", 1))
