"""Tiny random DeepSeek-V3 and DeepSeek-V2-Lite checkpoints in the real tensor names and config keys,
and a numpy forward pass of the HF computation: multi-head latent attention (low-rank q or one
q_proj, compressed kv with a shared rope key), a dense first layer, then routed experts (V3:
sigmoid scores, selection biased per expert inside the best groups, normalised and scaled weights;
V2: softmax, greedy) plus shared experts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .tiny_llama import RandomWeights, stored_values, train_tokenizer, write_safetensors

E, H, NOPE, ROPE, V, KV_R, Q_R = 128, 4, 32, 16, 32, 64, 64
F, F_EXP, N_EXP, VOCAB = 256, 64, 8, 320

VARIANTS = {
    "DeepseekV3ForCausalLM": dict(model_type="deepseek_v3", q_lora_rank=Q_R, scoring_func="sigmoid",
                                  n_group=2, topk_group=1, topk_method="noaux_tc", norm_topk_prob=True,
                                  routed_scaling_factor=2.5, n_shared_experts=1, num_nextn_predict_layers=1),
    "DeepseekV2ForCausalLM": dict(model_type="deepseek_v2", q_lora_rank=None, scoring_func="softmax",
                                  n_group=1, topk_group=1, topk_method="greedy", norm_topk_prob=False,
                                  routed_scaling_factor=1.0, n_shared_experts=2),
}


def build_deepseek(folder: Path, arch: str, *, n_layer: int = 3, seed: int = 0) -> tuple[dict, dict]:
    var = VARIANTS[arch]
    folder.mkdir(parents=True, exist_ok=True)
    r = RandomWeights(seed)
    mat, vec = r.mat, r.vec

    hf = r.lm(VOCAB, E)
    for i in range(n_layer):
        p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
        hf[p + "input_layernorm.weight"], hf[p + "post_attention_layernorm.weight"] = vec(E), vec(E)
        if var["q_lora_rank"]:
            hf[a + "q_a_proj.weight"], hf[a + "q_a_layernorm.weight"] = mat(Q_R, E, scale=0.2), vec(Q_R)
            hf[a + "q_b_proj.weight"] = mat(H * (NOPE + ROPE), Q_R, scale=0.2)
        else:
            hf[a + "q_proj.weight"] = mat(H * (NOPE + ROPE), E, scale=0.2)
        hf[a + "kv_a_proj_with_mqa.weight"] = mat(KV_R + ROPE, E, scale=0.2)
        hf[a + "kv_a_layernorm.weight"] = vec(KV_R)
        hf[a + "kv_b_proj.weight"] = mat(H * (NOPE + V), KV_R, scale=0.2)
        hf[a + "o_proj.weight"] = mat(E, H * V)
        m = p + "mlp."
        if i == 0:   # first_k_dense_replace = 1
            hf[m + "gate_proj.weight"], hf[m + "up_proj.weight"] = mat(F, E), mat(F, E)
            hf[m + "down_proj.weight"] = mat(E, F)
            continue
        hf[m + "gate.weight"] = mat(N_EXP, E, scale=0.5)
        if var["scoring_func"] == "sigmoid":
            hf[m + "gate.e_score_correction_bias"] = mat(N_EXP, scale=0.03)
        for e in range(N_EXP):
            x = m + f"experts.{e}."
            hf[x + "gate_proj.weight"], hf[x + "up_proj.weight"] = mat(F_EXP, E), mat(F_EXP, E)
            hf[x + "down_proj.weight"] = mat(E, F_EXP)
        fs = F_EXP * var["n_shared_experts"]
        hf[m + "shared_experts.gate_proj.weight"], hf[m + "shared_experts.up_proj.weight"] = mat(fs, E), mat(fs, E)
        hf[m + "shared_experts.down_proj.weight"] = mat(E, fs)
    stored = dict(hf)
    if var.get("num_nextn_predict_layers"):   # V3's multi-token-prediction layer: not converted
        stored[f"model.layers.{n_layer}.eh_proj.weight"] = mat(E, 2 * E)
        stored[f"model.layers.{n_layer}.input_layernorm.weight"] = vec(E)
    write_safetensors(folder / "model.safetensors", stored, "BF16")
    cfg = {"architectures": [arch], "hidden_size": E, "intermediate_size": F, "moe_intermediate_size": F_EXP,
           "num_hidden_layers": n_layer, "num_attention_heads": H, "num_key_value_heads": H,
           "kv_lora_rank": KV_R, "qk_nope_head_dim": NOPE, "qk_rope_head_dim": ROPE, "v_head_dim": V,
           "n_routed_experts": N_EXP, "num_experts_per_tok": 2, "first_k_dense_replace": 1,
           "moe_layer_freq": 1, "vocab_size": VOCAB, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
           "rope_theta": 10000.0, "tie_word_embeddings": False, "hidden_act": "silu", "bos_token_id": 1,
           "eos_token_id": 2, "torch_dtype": "bfloat16", "attention_bias": False, **var}
    (folder / "config.json").write_text(json.dumps(cfg))
    train_tokenizer(folder, VOCAB)
    return {k: stored_values(v, "BF16") for k, v in hf.items()}, dict(var, arch=arch, n_layer=n_layer)


def deepseek_forward(w: dict, tokens: list[int], spec: dict) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in w.items()}
    x = w["model.embed_tokens.weight"][tokens]
    n = x.shape[0]
    ang = np.outer(np.arange(n), 10000.0 ** (-np.arange(0, ROPE, 2) / ROPE))
    mask = np.triu(np.full((n, n), -np.inf), 1)

    def norm(v, g):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + 1e-6) * g

    def rope(v):   # adjacent pairs
        c, s = np.cos(ang), np.sin(ang)
        out = np.empty_like(v)
        out[..., 0::2], out[..., 1::2] = v[..., 0::2] * c - v[..., 1::2] * s, v[..., 0::2] * s + v[..., 1::2] * c
        return out

    def swiglu(h, pre):
        g, u = h @ w[pre + "gate_proj.weight"].T, h @ w[pre + "up_proj.weight"].T
        return (g / (1 + np.exp(-g)) * u) @ w[pre + "down_proj.weight"].T

    for i in range(spec["n_layer"]):
        p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
        h = norm(x, w[p + "input_layernorm.weight"])
        if spec["q_lora_rank"]:
            q = norm(h @ w[a + "q_a_proj.weight"].T, w[a + "q_a_layernorm.weight"]) @ w[a + "q_b_proj.weight"].T
        else:
            q = h @ w[a + "q_proj.weight"].T
        q = q.reshape(n, H, NOPE + ROPE).transpose(1, 0, 2)
        q_nope, q_pe = q[..., :NOPE], rope(q[..., NOPE:])
        ckv = h @ w[a + "kv_a_proj_with_mqa.weight"].T
        k_pe = rope(ckv[:, KV_R:])
        kv = (norm(ckv[:, :KV_R], w[a + "kv_a_layernorm.weight"]) @ w[a + "kv_b_proj.weight"].T)
        kv = kv.reshape(n, H, NOPE + V).transpose(1, 0, 2)
        k_nope, val = kv[..., :NOPE], kv[..., NOPE:]
        att = (q_nope @ k_nope.transpose(0, 2, 1) + q_pe @ k_pe.T) / np.sqrt(NOPE + ROPE) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + (att @ val).transpose(1, 0, 2).reshape(n, H * V) @ w[a + "o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        x = x + (swiglu(h, p + "mlp.") if i == 0 else _moe(w, p + "mlp.", h, spec, swiglu))
    return norm(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


def _moe(w, m, h, spec, swiglu):
    logits = h @ w[m + "gate.weight"].T
    if spec["scoring_func"] == "sigmoid":
        scores = 1 / (1 + np.exp(-logits))
    else:
        scores = np.exp(logits - logits.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
    choice = scores + w.get(m + "gate.e_score_correction_bias", 0)
    out = np.zeros_like(h)
    G = spec["n_group"]
    for t in range(h.shape[0]):
        c = choice[t].copy()
        if G > 1:   # keep the topk_group groups whose two best experts score highest
            groups = c.reshape(G, -1)
            best = np.sort(groups, -1)[:, -2:].sum(-1)
            keep = np.argsort(-best)[: spec["topk_group"]]
            for g in range(G):
                if g not in keep:
                    groups[g] = -np.inf
            c = groups.reshape(-1)
        top = np.argsort(-c)[:2]
        wt = scores[t, top]
        if spec["norm_topk_prob"]:
            wt = wt / wt.sum()
        wt = wt * spec["routed_scaling_factor"]
        for e, k in zip(top, wt):
            out[t] += k * swiglu(h[t], m + f"experts.{e}.")
    return out + swiglu(h, m + "shared_experts.")
