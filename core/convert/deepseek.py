"""DeepSeek-V2/V3 (and V2-Lite): multi-head latent attention (MLA) and mixture-of-experts with
shared experts, written as llama.cpp's `deepseek2` the way its converter does it
(conversion/deepseek.py of the pinned llama.cpp):

  * MLA: q through a low-rank pair (q_a → norm → q_b) or one q_proj (Lite); keys/values through a
    compressed latent (kv_a_proj_with_mqa → norm → kv_b_proj). llama.cpp absorbs kv_b into the
    attention, so kv_b_proj is cut per head into k_b (transposed) and v_b, two 3-D tensors.
    The file says one KV head: llama.cpp caches the latent, shared by every head.
  * MoE: routed experts stacked per layer, shared experts as one wider MLP (`*_shexp`), the first
    `first_k_dense_replace` layers dense. V3 scores experts with a sigmoid and picks them with a
    per-expert bias (`e_score_correction_bias` → exp_probs_b) inside the best expert groups.
  * Rope turns adjacent pairs (llama.cpp's NORM rope): q/k are left as stored.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from .architectures import Adapter, add_rope_scaling

_LAYER = re.compile(r"^model\.layers\.(\d+)\.")


class DeepseekV2(Adapter):
    gguf_arch = "deepseek2"
    prefer_spm = False
    permute_qk = False

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        c = self.cfg
        self.n_head_kv = 1                         # MLA caches one latent for all heads
        self.kv_lora_rank = int(c.get("kv_lora_rank") or 512)
        self.q_lora_rank = int(c.get("q_lora_rank") or 0)
        self.nope = int(c["qk_nope_head_dim"])
        self.rope = int(c["qk_rope_head_dim"])
        self.v_dim = int(c["v_head_dim"])
        self.n_dense = int(c["first_k_dense_replace"] if c.get("first_k_dense_replace") is not None
                           else (0 if self.n_expert else self.n_layer))
        self.n_shared = int(c.get("n_shared_experts") or 0)
        self.n_ff_exp = int(c.get("moe_intermediate_size") or c.get("intermediate_size"))

    def add_hparams(self, gw: Any) -> None:
        import gguf
        c = self.cfg
        gw.add_block_count(self.n_layer)
        if c.get("max_position_embeddings") is not None:
            gw.add_context_length(int(c["max_position_embeddings"]))
        gw.add_embedding_length(self.n_embd)
        if c.get("intermediate_size") is not None:
            gw.add_feed_forward_length(int(c["intermediate_size"]))
        gw.add_head_count(self.n_head)
        gw.add_head_count_kv(1)
        if c.get("rope_theta") is not None:
            gw.add_rope_freq_base(float(c["rope_theta"]))
        gw.add_layer_norm_rms_eps(float(c.get("rms_norm_eps") or 1e-6))
        if self.n_expert:
            gw.add_expert_count(self.n_expert)
            if c.get("num_experts_per_tok") is not None:
                gw.add_expert_used_count(int(c["num_experts_per_tok"]))
            if c.get("n_group") is not None:
                gw.add_expert_group_count(int(c["n_group"]))
            if c.get("topk_group") is not None:
                gw.add_expert_group_used_count(int(c["topk_group"]))
        score = c.get("scoring_func")
        if score == "sigmoid":
            gw.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
        elif score == "softmax":
            gw.add_expert_gating_func(gguf.ExpertGatingFuncType.SOFTMAX)
        gw.add_leading_dense_block_count(self.n_dense)
        if self.vocab_size:
            gw.add_vocab_size(int(self.vocab_size))
        # The converter leaves q_lora_rank out for V2-Lite; llama.cpp then requires it unless the
        # model has exactly Lite's 26/27 layers. 0 is what it means (one q_proj), so we write it.
        gw.add_q_lora_rank(self.q_lora_rank)
        gw.add_kv_lora_rank(self.kv_lora_rank)
        gw.add_key_length(self.kv_lora_rank + self.rope)
        gw.add_value_length(self.kv_lora_rank)
        gw.add_key_length_mla(self.nope + self.rope)
        gw.add_value_length_mla(self.v_dim)
        gw.add_expert_feed_forward_length(self.n_ff_exp)
        gw.add_expert_shared_count(self.n_shared)
        if c.get("routed_scaling_factor") is not None:
            gw.add_expert_weights_scale(float(c["routed_scaling_factor"]))
        if c.get("norm_topk_prob"):
            gw.add_expert_weights_norm(True)
        gw.add_rope_dimension_count(self.rope)
        self._add_yarn(gw)

    def _add_yarn(self, gw: Any) -> None:
        s = self.cfg.get("rope_scaling") or {}
        add_rope_scaling(gw, s, yarn_details=True)
        if str(s.get("rope_type") or s.get("type") or "") == "yarn" and s.get("mscale_all_dim") is not None:
            gw.add_rope_scaling_yarn_log_mul(0.1 * float(s["mscale_all_dim"]))   # llama.cpp divides it out

    # --- tensors ---------------------------------------------------------------------------
    def skip(self, hf_name: str) -> bool:
        if super().skip(hf_name):
            return True
        if self.cfg.get("tie_word_embeddings") and hf_name == "lm_head.weight":
            return True
        m = _LAYER.match(hf_name)   # multi-token-prediction layers past the last (V3's layer 61)
        return bool(m and int(m.group(1)) >= self.n_layer)

    def gguf_name(self, hf_name: str) -> str:
        if hf_name.endswith("e_score_correction_bias"):
            hf_name = hf_name.replace("e_score_correction_bias", "e_score_correction.bias")
        return super().gguf_name(hf_name)

    def derive(self, hf_name: str, shape: tuple[int, ...]):
        if not hf_name.endswith("kv_b_proj.weight"):
            return None
        i = hf_name.split(".")[2]
        H, nope, v, r = self.n_head, self.nope, self.v_dim, self.kv_lora_rank

        def k_b(w: np.ndarray) -> np.ndarray:   # (H, nope, r) → (H, r, nope)
            return np.ascontiguousarray(w.reshape(H, nope + v, r)[:, :nope, :].transpose(0, 2, 1))

        def v_b(w: np.ndarray) -> np.ndarray:   # (H, v, r)
            return np.ascontiguousarray(w.reshape(H, nope + v, r)[:, nope:, :])

        return [(f"blk.{i}.attn_k_b.weight", (H, r, nope), k_b),
                (f"blk.{i}.attn_v_b.weight", (H, v, r), v_b)]


def deepseek2_layer_tensors(a: DeepseekV2, i: int) -> dict[str, tuple]:
    """What llama.cpp's deepseek2 loader creates for layer i (numpy shapes)."""
    E, H, k_dim = a.n_embd, a.n_head, a.nope + a.rope
    t: dict[str, tuple] = {"attn_norm.weight": (E,), "ffn_norm.weight": (E,),
                           "attn_kv_a_norm.weight": (a.kv_lora_rank,),
                           "attn_kv_a_mqa.weight": (a.kv_lora_rank + a.rope, E),
                           "attn_k_b.weight": (H, a.kv_lora_rank, a.nope),
                           "attn_v_b.weight": (H, a.v_dim, a.kv_lora_rank),
                           "attn_output.weight": (E, H * a.v_dim)}
    if a.q_lora_rank:
        t.update({"attn_q_a_norm.weight": (a.q_lora_rank,), "attn_q_a.weight": (a.q_lora_rank, E),
                  "attn_q_b.weight": (H * k_dim, a.q_lora_rank)})
    else:
        t["attn_q.weight"] = (H * k_dim, E)
    if i < a.n_dense:
        F = int(a.cfg["intermediate_size"])
        t.update({"ffn_gate.weight": (F, E), "ffn_up.weight": (F, E), "ffn_down.weight": (E, F)})
        return t
    X, Fe, Fs = a.n_expert, a.n_ff_exp, a.n_ff_exp * a.n_shared
    t.update({"ffn_gate_inp.weight": (X, E), "ffn_gate_exps.weight": (X, Fe, E),
              "ffn_up_exps.weight": (X, Fe, E), "ffn_down_exps.weight": (X, E, Fe),
              "ffn_gate_shexp.weight": (Fs, E), "ffn_up_shexp.weight": (Fs, E),
              "ffn_down_shexp.weight": (E, Fs)})
    return t
