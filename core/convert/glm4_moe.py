"""GLM-4.5 / 4.6 / 4.5-Air (Glm4MoeForCausalLM) as llama.cpp's `glm4moe`, the way its converter
writes it (conversion/glm.py): the attention of GLM-4 (q/k/v biases, rope on the first half of each
head, here in NEOX order so q/k stay as stored, optional per-head q/k norms), DeepSeek-V3's routing
(sigmoid scores, a per-expert selection bias, normalised and scaled weights) with shared experts,
the first `first_k_dense_replace` layers dense.

Its multi-token-prediction (MTP, "nextn") layers are written too, as the pinned converter does by
default: they are the checkpoint's layers num_hidden_layers.. (a full MoE layer plus eh_proj,
enorm, hnorm, shared_head.{head,norm} and, in GLM-4.5, its own embed_tokens copy), block_count
counts them and `glm4moe.nextn_predict_layers` says how many. llama.cpp runs them only for MTP
drafting; normal decoding stops at the last trunk layer and does not even load them.
"""
from __future__ import annotations

import re
from typing import Any

from .families_dense import TextModel

_LAYER = re.compile(r"^model\.layers\.(\d+)\.")


class Glm4Moe(TextModel):
    gguf_arch = "glm4moe"

    def __init__(self, cfg: dict):
        import gguf
        super().__init__(cfg)
        c = self.cfg
        self.n_dense = int(c.get("first_k_dense_replace") or 0)
        self.n_shared = int(c.get("n_shared_experts") or 0)
        self.n_ff_exp = int(c["moe_intermediate_size"])
        # the converter: block_count += num_nextn_predict_layers, names mapped for all of them
        self.n_trunk = self.n_layer
        self.n_nextn = int(c.get("num_nextn_predict_layers") or 0)
        self.n_layer = self.n_trunk + self.n_nextn
        self.name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GLM4_MOE, self.n_layer)

    def add_arch_hparams(self, gw: Any) -> None:
        import gguf
        c = self.cfg
        super().add_arch_hparams(gw)
        if c.get("n_group") is not None:
            gw.add_expert_group_count(int(c["n_group"]))
        if c.get("topk_group") is not None:
            gw.add_expert_group_used_count(int(c["topk_group"]))
        factor = c.get("partial_rotary_factor")
        gw.add_rope_dimension_count(int(self.head_dim * float(0.5 if factor is None else factor)))
        gw.add_expert_shared_count(self.n_shared)
        gw.add_leading_dense_block_count(self.n_dense)
        gw.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
        if c.get("routed_scaling_factor") is not None:
            gw.add_expert_weights_scale(float(c["routed_scaling_factor"]))
        if c.get("norm_topk_prob") is not None:
            gw.add_expert_weights_norm(bool(c["norm_topk_prob"]))
        if c.get("num_nextn_predict_layers") is not None:   # written even when 0, as the converter does
            gw.add_nextn_predict_layers(self.n_nextn)

    def skip(self, hf_name: str) -> bool:
        m = _LAYER.match(hf_name)
        return super().skip(hf_name) or bool(m and int(m.group(1)) >= self.n_layer)

    def gguf_name(self, hf_name: str) -> str:
        if hf_name.endswith("e_score_correction_bias"):
            hf_name = hf_name.replace("e_score_correction_bias", "e_score_correction.bias")
        return super().gguf_name(hf_name)


def glm4moe_layer_tensors(a: Glm4Moe, i: int) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """What llama.cpp's glm4moe loader creates for layer i (numpy shapes): (required, optional).
    q/k norms are optional (GLM-4.5-Air has none); an MTP layer (i >= the trunk) adds its nextn
    tensors, the embedding and head copies optional (GLM-4.6 and later store none)."""
    E, D = a.n_embd, a.head_dim
    q, kv = a.n_head * D, a.n_head_kv * D
    t: dict[str, tuple] = {"attn_norm.weight": (E,), "post_attention_norm.weight": (E,),
                           "attn_q.weight": (q, E), "attn_k.weight": (kv, E), "attn_v.weight": (kv, E),
                           "attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,),
                           "attn_output.weight": (E, q)}
    opt: dict[str, tuple] = {"attn_q_norm.weight": (D,), "attn_k_norm.weight": (D,)}
    if i >= a.n_trunk:
        V = a.vocab_size
        t.update({"nextn.eh_proj.weight": (E, 2 * E), "nextn.enorm.weight": (E,),
                  "nextn.hnorm.weight": (E,)})
        opt.update({"nextn.embed_tokens.weight": (V, E), "nextn.shared_head_head.weight": (V, E),
                    "nextn.shared_head_norm.weight": (E,)})
    if i < a.n_dense:
        F = int(a.cfg["intermediate_size"])
        t.update({"ffn_gate.weight": (F, E), "ffn_up.weight": (F, E), "ffn_down.weight": (E, F)})
        return t, opt
    X, Fe, Fs = a.n_expert, a.n_ff_exp, a.n_ff_exp * a.n_shared
    t.update({"ffn_gate_inp.weight": (X, E), "exp_probs_b.bias": (X,), "ffn_gate_exps.weight": (X, Fe, E),
              "ffn_up_exps.weight": (X, Fe, E), "ffn_down_exps.weight": (X, E, Fe)})
    if a.n_shared:
        t.update({"ffn_gate_shexp.weight": (Fs, E), "ffn_up_shexp.weight": (Fs, E),
                  "ffn_down_shexp.weight": (E, Fs)})
    return t, opt
