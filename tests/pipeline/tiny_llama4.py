"""A tiny random Llama 4 (the multimodal Llama4ForConditionalGeneration form: language_model.*, a
vision side to leave out) and a numpy forward of the HF text computation: rope in adjacent pairs
with llama3 frequency scaling, no rope on every 4th layer, q/k L2-normed after rope, MoE every 2nd
layer (sigmoid of the top-1 router logit scales the expert's input) plus a shared expert, fused
expert tensors stored input × output."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .tiny_llama import RandomWeights, stored_values, train_tokenizer, write_safetensors

E, H, KV, D, F_EXP, F_MLP, X, VOCAB = 128, 4, 2, 32, 64, 256, 4, 320
ROPE = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
            original_max_position_embeddings=64)
THETA = 500000.0


def build_llama4(folder: Path, *, n_layer: int = 4, seed: int = 0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    r = RandomWeights(seed)
    mat, vec = r.mat, r.vec

    t = "language_model.model."
    hf = r.lm(VOCAB, E, prefix=t, head="language_model.lm_head.weight")
    for i in range(n_layer):
        p = f"{t}layers.{i}."
        hf[p + "input_layernorm.weight"], hf[p + "post_attention_layernorm.weight"] = vec(E), vec(E)
        for k, rows in (("q", H * D), ("k", KV * D), ("v", KV * D)):
            hf[p + f"self_attn.{k}_proj.weight"] = mat(rows, E, scale=0.2)
        hf[p + "self_attn.o_proj.weight"] = mat(E, H * D)
        f = p + "feed_forward."
        if (i + 1) % 2 == 0:
            hf[f + "router.weight"] = mat(X, E, scale=0.5)
            hf[f + "experts.gate_up_proj"] = mat(X, E, 2 * F_EXP)
            hf[f + "experts.down_proj"] = mat(X, F_EXP, E)
            s = f + "shared_expert."
            hf[s + "gate_proj.weight"], hf[s + "up_proj.weight"] = mat(F_EXP, E), mat(F_EXP, E)
            hf[s + "down_proj.weight"] = mat(E, F_EXP)
        else:
            hf[f + "gate_proj.weight"], hf[f + "up_proj.weight"] = mat(F_MLP, E), mat(F_MLP, E)
            hf[f + "down_proj.weight"] = mat(E, F_MLP)
    stored = dict(hf, **{"vision_model.patch_embedding.linear.weight": mat(64, 48),
                         "multi_modal_projector.linear_1.weight": mat(E, 64)})
    write_safetensors(folder / "model.safetensors", stored, "BF16")
    text = {"model_type": "llama4_text", "hidden_size": E, "intermediate_size": F_EXP,
            "intermediate_size_mlp": F_MLP, "num_hidden_layers": n_layer, "num_attention_heads": H,
            "num_key_value_heads": KV, "head_dim": D, "num_local_experts": X, "num_experts_per_tok": 1,
            "interleave_moe_layer_step": 2, "use_qk_norm": True, "attention_chunk_size": 8192,
            "no_rope_layers": [int((i + 1) % 4 != 0) for i in range(n_layer)],
            "attn_temperature_tuning": True, "floor_scale": 8192, "attn_scale": 0.1,
            "rope_theta": THETA, "rope_scaling": ROPE, "rms_norm_eps": 1e-5, "vocab_size": VOCAB,
            "max_position_embeddings": 1024, "hidden_act": "silu", "tie_word_embeddings": False}
    cfg = {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
           "text_config": text, "vision_config": {"model_type": "llama4_vision_model", "hidden_size": 64},
           "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}
    (folder / "config.json").write_text(json.dumps(cfg))
    train_tokenizer(folder, VOCAB)
    return {k: stored_values(v, "BF16") for k, v in hf.items()}


def _inv_freq() -> np.ndarray:
    """transformers' llama3 rope: long wavelengths slowed by `factor`, a smooth ramp between."""
    inv = THETA ** (-np.arange(0, D, 2) / D)
    old, low, high, factor = (ROPE[k] for k in ("original_max_position_embeddings", "low_freq_factor",
                                                 "high_freq_factor", "factor"))
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    medium = (wavelen >= old / high) & (wavelen <= old / low)
    return np.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled)


def llama4_forward(w: dict, tokens: list[int], n_layer: int = 4) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in w.items()}
    t = "language_model.model."
    x = w[t + "embed_tokens.weight"][tokens]
    n = x.shape[0]
    ang = np.outer(np.arange(n), _inv_freq())
    mask = np.triu(np.full((n, n), -np.inf), 1)

    def norm(v, g=1.0):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + 1e-5) * g

    def rope(v):
        c, s = np.cos(ang), np.sin(ang)
        out = np.empty_like(v)
        out[..., 0::2], out[..., 1::2] = v[..., 0::2] * c - v[..., 1::2] * s, v[..., 0::2] * s + v[..., 1::2] * c
        return out

    def silu(v):
        return v / (1 + np.exp(-v))

    for i in range(n_layer):
        p = f"{t}layers.{i}."
        h = norm(x, w[p + "input_layernorm.weight"])
        q, k, v = (h @ w[p + f"self_attn.{m}_proj.weight"].T for m in "qkv")
        q = q.reshape(n, H, D).transpose(1, 0, 2)
        k = k.reshape(n, KV, D).transpose(1, 0, 2)
        v = v.reshape(n, KV, D).transpose(1, 0, 2)
        if (i + 1) % 4:   # rope layers; their q/k are L2-normed after rope
            q, k = norm(rope(q)), norm(rope(k))
        # (no-rope layers scale q by log(floor((pos + 1) / 8192) + 1) * 0.1 + 1 = 1 here)
        k, v = np.repeat(k, H // KV, 0), np.repeat(v, H // KV, 0)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(D) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + (att @ v).transpose(1, 0, 2).reshape(n, H * D) @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        f = p + "feed_forward."
        if (i + 1) % 2:
            x = x + (silu(h @ w[f + "gate_proj.weight"].T) * (h @ w[f + "up_proj.weight"].T)) @ w[f + "down_proj.weight"].T
            continue
        logits = h @ w[f + "router.weight"].T
        out = np.zeros_like(h)
        for tok in range(n):
            e = int(np.argmax(logits[tok]))
            xin = h[tok] / (1 + np.exp(-logits[tok, e]))         # the score scales the input
            gate, up = np.split(xin @ w[f + "experts.gate_up_proj"][e], 2)
            out[tok] = (silu(gate) * up) @ w[f + "experts.down_proj"][e]
        s = f + "shared_expert."
        out += (silu(h @ w[s + "gate_proj.weight"].T) * (h @ w[s + "up_proj.weight"].T)) @ w[s + "down_proj.weight"].T
        x = x + out
    return norm(x, w[t + "norm.weight"]) @ w["language_model.lm_head.weight"].T
