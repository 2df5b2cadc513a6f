"""Llama 4 text (Scout/Maverick; Llama4ForConditionalGeneration's language model or
Llama4ForCausalLM) as llama.cpp's `llama4`, the way its converter writes it (conversion/llama.py).

The layer is llama's with: rope in adjacent pairs (q/k not permuted), no rope on every 4th layer,
q/k L2-normed after rope, a mixture of experts on every `interleave_moe_layer_step`-th layer (a
sigmoid of the top-k router logit scales the expert's *input*) plus one shared expert; the other
layers dense with `intermediate_size_mlp`. The experts come fused as 3-D tensors stored input ×
output: gate_up_proj (n_expert, n_embd, 2 * n_ff) and down_proj (n_expert, n_ff, n_embd). We
transpose them one expert at a time while streaming (never the whole stack in memory).
"""
from __future__ import annotations

import re
from typing import Any

from .architectures import Adapter
from .tensor_plan import fused_gate_up_down

_FUSED = re.compile(r"^(?:language_model\.)?model\.(?:language_model\.)?layers\.(\d+)\.feed_forward\.experts\."
                    r"(gate_up_proj|down_proj)$")


class Llama4(Adapter):
    gguf_arch = "llama4"
    prefer_spm = False
    permute_qk = False

    def __init__(self, cfg: dict):
        cfg = dict(cfg)
        # the converter's renaming: intermediate_size is the experts', intermediate_size_mlp the
        # dense layers'
        cfg["intermediate_size_moe"] = cfg.get("intermediate_size")
        if cfg.get("intermediate_size_mlp") is not None:
            cfg["intermediate_size"] = cfg["intermediate_size_mlp"]
        super().__init__(cfg)
        self.n_ff_exp = int(cfg["intermediate_size_moe"])
        self.moe_step = int(cfg.get("interleave_moe_layer_step") or 1)

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        gw.add_interleave_moe_layer_step(self.moe_step)
        gw.add_expert_feed_forward_length(self.n_ff_exp)
        types = self.cfg.get("layer_types")
        if isinstance(types, list) and types and all(t == "full_attention" for t in types):
            gw.add_sliding_window(0)   # MobileLLM-style: no chunked attention

    def skip(self, hf_name: str) -> bool:
        return (super().skip(hf_name) or hf_name.startswith(("vision_model.", "multi_modal_projector."))
                or "vision_model" in hf_name.split(".")[:2])

    def _text_name(self, hf_name: str) -> str:
        return hf_name.replace("model.language_model.", "model.", 1).replace("language_model.", "", 1)

    def gguf_name(self, hf_name: str) -> str:
        return super().gguf_name(self._text_name(hf_name))

    def packed_tensors(self, ckpt) -> tuple[list, set[str]]:
        return fused_gate_up_down(ckpt, _FUSED, "model.layers.{i}.feed_forward.experts.",
                                  self.gguf_name)

def llama4_layer_tensors(a: Llama4, i: int) -> dict[str, tuple]:
    """What llama.cpp's llama4 loader creates for layer i (numpy shapes)."""
    E, D = a.n_embd, a.head_dim
    q, kv = a.n_head * D, a.n_head_kv * D
    t: dict[str, tuple] = {"attn_norm.weight": (E,), "ffn_norm.weight": (E,), "attn_q.weight": (q, E),
                           "attn_k.weight": (kv, E), "attn_v.weight": (kv, E), "attn_output.weight": (E, q)}
    if (i + 1) % a.moe_step == 0:
        X, Fe = a.n_expert, a.n_ff_exp
        t.update({"ffn_gate_inp.weight": (X, E), "ffn_gate_exps.weight": (X, Fe, E),
                  "ffn_up_exps.weight": (X, Fe, E), "ffn_down_exps.weight": (X, E, Fe),
                  "ffn_gate_shexp.weight": (Fe, E), "ffn_up_shexp.weight": (Fe, E),
                  "ffn_down_shexp.weight": (E, Fe)})
    else:
        F = int(a.cfg["intermediate_size"])
        t.update({"ffn_gate.weight": (F, E), "ffn_up.weight": (F, E), "ffn_down.weight": (E, F)})
    return t
