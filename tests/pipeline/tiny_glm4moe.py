"""A tiny random GLM-4.5 (Glm4MoeForCausalLM) and the numpy forward of the HF computation: q/k/v
biases, per-head q/k RMS norms, NEOX rope on the first half of each head, a dense first layer, then
DeepSeek-V3-style routing (tiny_deepseek's) with a shared expert, and one multi-token-prediction
(MTP) layer after the trunk in GLM-4.5's HF form: a full MoE layer plus eh_proj, enorm, hnorm,
shared_head.norm and (GLM-4.5; GLM-4.6 leaves them out: `mtp_copies=False`) its own embed_tokens
and shared_head.head. The forward is the normal decoding one, which the MTP layer takes no part in."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .tiny_deepseek import _moe
from .tiny_llama import RandomWeights, stored_values, train_tokenizer, write_safetensors

E, H, KV, D, F, F_EXP, X, VOCAB = 128, 4, 2, 32, 256, 64, 8, 320
SPEC = dict(scoring_func="sigmoid", n_group=1, topk_group=1, norm_topk_prob=True, routed_scaling_factor=2.5)


def build_glm4moe(folder: Path, *, n_layer: int = 3, seed: int = 0, mtp: bool = True,
                  mtp_copies: bool = True, n_embd: int = E) -> dict:
    """`mtp`: store the MTP layer (config.json announces it either way, as real repos with their
    MTP weights stripped do). `n_embd` 256: rows long enough for the 256-weight i-quant blocks."""
    E = n_embd
    folder.mkdir(parents=True, exist_ok=True)
    r = RandomWeights(seed)
    mat, vec = r.mat, r.vec

    hf = r.lm(VOCAB, E)
    for i in range(n_layer + 1 if mtp else n_layer):
        p, a, m = f"model.layers.{i}.", f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
        hf[p + "input_layernorm.weight"], hf[p + "post_attention_layernorm.weight"] = vec(E), vec(E)
        for k, rows in (("q", H * D), ("k", KV * D), ("v", KV * D)):
            hf[a + f"{k}_proj.weight"], hf[a + f"{k}_proj.bias"] = mat(rows, E, scale=0.2), mat(rows, scale=0.1)
        hf[a + "o_proj.weight"] = mat(E, H * D)
        hf[a + "q_norm.weight"], hf[a + "k_norm.weight"] = vec(D), vec(D)
        if i == 0:
            hf[m + "gate_proj.weight"], hf[m + "up_proj.weight"] = mat(F, E), mat(F, E)
            hf[m + "down_proj.weight"] = mat(E, F)
            continue
        hf[m + "gate.weight"], hf[m + "gate.e_score_correction_bias"] = mat(X, E, scale=0.5), mat(X, scale=0.03)
        for e in range(X):
            x = m + f"experts.{e}."
            hf[x + "gate_proj.weight"], hf[x + "up_proj.weight"] = mat(F_EXP, E), mat(F_EXP, E)
            hf[x + "down_proj.weight"] = mat(E, F_EXP)
        s = m + "shared_experts."
        hf[s + "gate_proj.weight"], hf[s + "up_proj.weight"] = mat(F_EXP, E), mat(F_EXP, E)
        hf[s + "down_proj.weight"] = mat(E, F_EXP)
    if mtp:   # the MTP layer's own tensors (real names: model.layers.{num_hidden_layers}.*)
        p = f"model.layers.{n_layer}."
        hf[p + "eh_proj.weight"], hf[p + "enorm.weight"], hf[p + "hnorm.weight"] = mat(E, 2 * E), vec(E), vec(E)
        hf[p + "shared_head.norm.weight"] = vec(E)
        if mtp_copies:
            hf[p + "embed_tokens.weight"], hf[p + "shared_head.head.weight"] = mat(VOCAB, E), mat(VOCAB, E)
    write_safetensors(folder / "model.safetensors", hf, "BF16")
    cfg = {"architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe", "hidden_size": E,
           "intermediate_size": F, "moe_intermediate_size": F_EXP, "num_hidden_layers": n_layer,
           "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": D, "partial_rotary_factor": 0.5,
           "n_routed_experts": X, "num_experts_per_tok": 2, "n_shared_experts": 1, "first_k_dense_replace": 1,
           "topk_group": 1, "use_qk_norm": True, "attention_bias": True, "num_nextn_predict_layers": 1,
           "vocab_size": VOCAB, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2,
           "torch_dtype": "bfloat16", **{k: v for k, v in SPEC.items() if k != "scoring_func"}}
    (folder / "config.json").write_text(json.dumps(cfg))
    train_tokenizer(folder, VOCAB)
    return {k: stored_values(v, "BF16") for k, v in hf.items()}


def _norm(v, g):
    return v / np.sqrt((v * v).mean(-1, keepdims=True) + 1e-5) * g


def _layer(w: dict, i: int, x: np.ndarray) -> np.ndarray:
    """Decoder layer i (float64 weights) on x (n, E), positions 0..n-1, causal."""
    n, rot = x.shape[0], D // 2
    ang = np.outer(np.arange(n), 10000.0 ** (-np.arange(0, rot, 2) / rot))
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))
    mask = np.triu(np.full((n, n), -np.inf), 1)

    def rope(v):   # rotate_half on the first `rot` dims of each head
        r = v[..., :rot]
        r = r * cos + np.concatenate([-r[..., rot // 2:], r[..., : rot // 2]], -1) * sin
        return np.concatenate([r, v[..., rot:]], -1)

    def swiglu(h, pre):
        g, u = h @ w[pre + "gate_proj.weight"].T, h @ w[pre + "up_proj.weight"].T
        return (g / (1 + np.exp(-g)) * u) @ w[pre + "down_proj.weight"].T

    p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
    h = _norm(x, w[p + "input_layernorm.weight"])
    q, k, v = (h @ w[a + f"{m}_proj.weight"].T + w[a + f"{m}_proj.bias"] for m in "qkv")
    q = rope(_norm(q.reshape(n, H, D).transpose(1, 0, 2), w[a + "q_norm.weight"]))
    k = rope(_norm(k.reshape(n, KV, D).transpose(1, 0, 2), w[a + "k_norm.weight"]))
    k, v = np.repeat(k, H // KV, 0), np.repeat(v.reshape(n, KV, D).transpose(1, 0, 2), H // KV, 0)
    att = q @ k.transpose(0, 2, 1) / np.sqrt(D) + mask
    att = np.exp(att - att.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    x = x + (att @ v).transpose(1, 0, 2).reshape(n, H * D) @ w[a + "o_proj.weight"].T
    h = _norm(x, w[p + "post_attention_layernorm.weight"])
    return x + (swiglu(h, p + "mlp.") if i == 0 else _moe(w, p + "mlp.", h, SPEC, swiglu))


def glm4moe_forward(w: dict, tokens: list[int], n_layer: int = 3) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in w.items()}
    x = w["model.embed_tokens.weight"][tokens]
    for i in range(n_layer):
        x = _layer(w, i, x)
    return _norm(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


def glm4moe_mtp_forward(w: dict, tokens: list[int], hidden: np.ndarray, n_layer: int = 3) -> np.ndarray:
    """The MTP layer's next-next-token logits (transformers' Glm4MoeMTP / vLLM's, the DeepSeek-V3
    MTP module): the token's embedding and the trunk's hidden state of the position before,
    each RMS-normed, concatenated (embedding first) and projected by eh_proj, then one decoder
    layer and the shared head. The layer's own embed/head copies when stored, else the model's."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    p = f"model.layers.{n_layer}."
    embed = w.get(p + "embed_tokens.weight", w["model.embed_tokens.weight"])
    e = _norm(embed[tokens], w[p + "enorm.weight"])
    x = np.concatenate([e, _norm(hidden, w[p + "hnorm.weight"])], -1) @ w[p + "eh_proj.weight"].T
    x = _layer(w, n_layer, x)
    return _norm(x, w[p + "shared_head.norm.weight"]) @ w.get(p + "shared_head.head.weight", w["lm_head.weight"]).T
