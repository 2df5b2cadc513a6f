"""Tiny random checkpoints of the llama-shaped families (dense and mixture-of-experts) in their real
HF tensor names and config keys, and one numpy forward pass that covers all their differences.

A family is a dict of switches; `build_family` writes config.json, a trained BPE tokenizer and
safetensors, and returns (canonical weights, spec) for `family_forward`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .tiny_llama import stored_values, train_tokenizer, write_safetensors

# Real config shapes, shrunk: the keys each family's config.json carries.
FAMILIES = {
    "MixtralForCausalLM": dict(model_type="mixtral", moe="mixtral", n_expert=4, top_k=2, norm_topk=True),
    "Qwen2MoeForCausalLM": dict(model_type="qwen2_moe", moe="qwen", n_expert=4, top_k=2,
                                norm_topk=False, bias=True, shared=64, tied=False),
    "Qwen3MoeForCausalLM": dict(model_type="qwen3_moe", moe="qwen", n_expert=4, top_k=2,
                                norm_topk=True, qk_norm="head"),
    "OlmoeForCausalLM": dict(model_type="olmoe", moe="qwen", n_expert=8, top_k=2, norm_topk=False,
                             qk_norm="full", n_head_kv=4),
    "GraniteMoeForCausalLM": dict(model_type="granitemoe", moe="granite", n_expert=4, top_k=2,
                                  norm_topk=True, granite=True),
    "GraniteForCausalLM": dict(model_type="granite", granite=True),
    "Olmo2ForCausalLM": dict(model_type="olmo2", post_norms=True, qk_norm="full"),
    "Olmo3ForCausalLM": dict(model_type="olmo3", post_norms=True, qk_norm="full", swa=4096),
    "SmolLM3ForCausalLM": dict(model_type="smollm3", no_rope_every=4),
    "ArceeForCausalLM": dict(model_type="arcee", mlp="relu2"),
    # ERNIE's rotary turns adjacent pairs (llama.cpp's NORM rope), so its q/k are not permuted
    "Ernie4_5ForCausalLM": dict(model_type="ernie4_5", rope="pairs", tied=True),
}

GRANITE = dict(embedding_multiplier=12.0, attention_multiplier=0.0625, residual_multiplier=0.22,
               logits_scaling=8.0)


def build_family(folder: Path, arch: str, *, n_layer: int = 4, n_embd: int = 128, n_ff: int = 256,
                 n_head: int = 4, vocab: int = 320, seed: int = 0) -> tuple[dict, dict]:
    spec = dict(FAMILIES[arch], arch=arch, n_layer=n_layer, n_head=n_head)
    spec.setdefault("n_head_kv", 2)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    hd, kvh = n_embd // n_head, spec["n_head_kv"]
    n_exp, f_exp = spec.get("n_expert", 0), n_ff // 2

    def mat(*shape, scale=0.05):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def vec(n):
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    hf: dict[str, np.ndarray] = {"model.embed_tokens.weight": mat(vocab, n_embd, scale=0.5),
                                 "model.norm.weight": vec(n_embd)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        hf[a + "q_proj.weight"] = mat(n_head * hd, n_embd, scale=0.2)
        hf[a + "k_proj.weight"] = mat(kvh * hd, n_embd, scale=0.2)
        hf[a + "v_proj.weight"] = mat(kvh * hd, n_embd)
        hf[a + "o_proj.weight"] = mat(n_embd, n_head * hd)
        if spec.get("bias"):
            for k, rows in (("q", n_head * hd), ("k", kvh * hd), ("v", kvh * hd)):
                hf[a + f"{k}_proj.bias"] = mat(rows, scale=0.1)
        if spec.get("qk_norm") == "head":
            hf[a + "q_norm.weight"], hf[a + "k_norm.weight"] = vec(hd), vec(hd)
        elif spec.get("qk_norm") == "full":
            hf[a + "q_norm.weight"], hf[a + "k_norm.weight"] = vec(n_head * hd), vec(kvh * hd)
        if spec.get("post_norms"):
            hf[p + "post_attention_layernorm.weight"] = vec(n_embd)
            hf[p + "post_feedforward_layernorm.weight"] = vec(n_embd)
        else:
            hf[p + "input_layernorm.weight"] = vec(n_embd)
            hf[p + "post_attention_layernorm.weight"] = vec(n_embd)
        moe = spec.get("moe")
        if moe == "mixtral":
            hf[p + "block_sparse_moe.gate.weight"] = mat(n_exp, n_embd, scale=0.5)
            for e in range(n_exp):
                x = p + f"block_sparse_moe.experts.{e}."
                hf[x + "w1.weight"], hf[x + "w3.weight"] = mat(f_exp, n_embd), mat(f_exp, n_embd)
                hf[x + "w2.weight"] = mat(n_embd, f_exp)
        elif moe == "qwen":
            hf[p + "mlp.gate.weight"] = mat(n_exp, n_embd, scale=0.5)
            for e in range(n_exp):
                x = p + f"mlp.experts.{e}."
                hf[x + "gate_proj.weight"], hf[x + "up_proj.weight"] = mat(f_exp, n_embd), mat(f_exp, n_embd)
                hf[x + "down_proj.weight"] = mat(n_embd, f_exp)
            if spec.get("shared"):
                s, fs = p + "mlp.shared_expert.", spec["shared"]
                hf[s + "gate_proj.weight"], hf[s + "up_proj.weight"] = mat(fs, n_embd), mat(fs, n_embd)
                hf[s + "down_proj.weight"] = mat(n_embd, fs)
                hf[p + "mlp.shared_expert_gate.weight"] = mat(1, n_embd, scale=0.5)
        elif moe == "granite":
            hf[p + "block_sparse_moe.router.layer.weight"] = mat(n_exp, n_embd, scale=0.5)
            hf[p + "block_sparse_moe.input_linear.weight"] = mat(n_exp, 2 * f_exp, n_embd)
            hf[p + "block_sparse_moe.output_linear.weight"] = mat(n_exp, n_embd, f_exp)
        elif spec.get("mlp") == "relu2":
            hf[p + "mlp.up_proj.weight"], hf[p + "mlp.down_proj.weight"] = mat(n_ff, n_embd), mat(n_embd, n_ff)
        else:
            hf[p + "mlp.gate_proj.weight"], hf[p + "mlp.up_proj.weight"] = mat(n_ff, n_embd), mat(n_ff, n_embd)
            hf[p + "mlp.down_proj.weight"] = mat(n_embd, n_ff)
    tied = spec.get("tied", False)
    if not tied:
        hf["lm_head.weight"] = mat(vocab, n_embd, scale=0.2)
    write_safetensors(folder / "model.safetensors", hf, "BF16")

    cfg = {"architectures": [arch], "model_type": spec["model_type"], "hidden_size": n_embd,
           "intermediate_size": n_ff, "num_hidden_layers": n_layer, "num_attention_heads": n_head,
           "num_key_value_heads": kvh, "vocab_size": vocab, "max_position_embeddings": 512,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tied,
           "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16", "hidden_act": "silu"}
    if n_exp:
        cfg.update(num_experts_per_tok=spec["top_k"], norm_topk_prob=spec["norm_topk"])
        cfg["num_local_experts" if moe in ("mixtral", "granite") else "num_experts"] = n_exp
        if arch not in ("Qwen2MoeForCausalLM", "Qwen3MoeForCausalLM"):   # expert width: intermediate_size
            cfg["intermediate_size"] = f_exp
        else:
            cfg["moe_intermediate_size"] = f_exp
        if spec.get("shared"):
            cfg["shared_expert_intermediate_size"] = spec["shared"]
    if spec.get("granite"):
        cfg.update(GRANITE)
    if spec.get("no_rope_every"):
        k = spec["no_rope_every"]
        cfg.update(no_rope_layer_interval=k, no_rope_layers=[int((i + 1) % k != 0) for i in range(n_layer)])
    if spec.get("swa"):
        cfg["sliding_window"] = spec["swa"]
    if spec.get("mlp") == "relu2":
        cfg["hidden_act"] = "relu2"
    (folder / "config.json").write_text(json.dumps(cfg))
    train_tokenizer(folder, vocab)
    return {k: stored_values(v, "BF16") for k, v in hf.items()}, spec


def family_forward(w: dict, tokens: list[int], spec: dict, *, embeds: np.ndarray | None = None,
                   angles: np.ndarray | None = None, after_layer=None) -> np.ndarray:
    """Logits (n_tokens, vocab) of the HF computation, float64. Multimodal input (Qwen3-VL):
    `embeds` replace the token embeddings, `angles` (n_tokens, head_dim / 2) the rope angles,
    `after_layer(i, x)` changes a layer's output (deepstack)."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    n_head, kvh, g = spec["n_head"], spec["n_head_kv"], spec.get("granite")
    x = w["model.embed_tokens.weight"][tokens] if embeds is None else np.asarray(embeds, np.float64)
    x = x * (GRANITE["embedding_multiplier"] if g else 1.0)
    n, d = x.shape
    hd = d // n_head
    ang = np.outer(np.arange(n), 10000.0 ** (-np.arange(0, hd, 2) / hd)) if angles is None else angles
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))
    res = GRANITE["residual_multiplier"] if g else 1.0
    scale = GRANITE["attention_multiplier"] if g else 1 / np.sqrt(hd)
    mask = np.triu(np.full((n, n), -np.inf), 1)

    def norm(v, gain):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + 1e-5) * gain

    def silu(v):
        return v / (1 + np.exp(-v))

    def swiglu(h, gate, up, down):
        return (silu(h @ gate.T) * (h @ up.T)) @ down.T

    def rope(v):
        if spec.get("rope") == "pairs":   # (x0, x1) per pair rotated by the pair's angle
            c, s = np.cos(ang), np.sin(ang)
            x0, x1 = v[..., 0::2], v[..., 1::2]
            out = np.empty_like(v)
            out[..., 0::2], out[..., 1::2] = x0 * c - x1 * s, x0 * s + x1 * c
            return out
        return v * cos + np.concatenate([-v[..., hd // 2:], v[..., : hd // 2]], -1) * sin

    for i in range(spec["n_layer"]):
        p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
        h = x if spec.get("post_norms") else norm(x, w[p + "input_layernorm.weight"])
        q, k, v = (h @ w[a + f"{m}_proj.weight"].T + w.get(a + f"{m}_proj.bias", 0) for m in "qkv")
        if spec.get("qk_norm") == "full":
            q, k = norm(q, w[a + "q_norm.weight"]), norm(k, w[a + "k_norm.weight"])
        q = q.reshape(n, n_head, hd).transpose(1, 0, 2)
        k = k.reshape(n, kvh, hd).transpose(1, 0, 2)
        v = v.reshape(n, kvh, hd).transpose(1, 0, 2)
        if spec.get("qk_norm") == "head":
            q, k = norm(q, w[a + "q_norm.weight"]), norm(k, w[a + "k_norm.weight"])
        every = spec.get("no_rope_every")
        if not every or (i + 1) % every:
            q, k = rope(q), rope(k)
        k, v = np.repeat(k, n_head // kvh, 0), np.repeat(v, n_head // kvh, 0)
        att = q @ k.transpose(0, 2, 1) * scale + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = (att @ v).transpose(1, 0, 2).reshape(n, d) @ w[a + "o_proj.weight"].T
        if spec.get("post_norms"):
            x = x + norm(o, w[p + "post_attention_layernorm.weight"])
            h = x
        else:
            x = x + o * res
            h = norm(x, w[p + "post_attention_layernorm.weight"])
        m = _mlp(w, p, h, spec, swiglu)
        x = x + (norm(m, w[p + "post_feedforward_layernorm.weight"]) if spec.get("post_norms") else m * res)
        if after_layer is not None:
            x = after_layer(i, x)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    logits = norm(x, w["model.norm.weight"]) @ head.T
    return logits / GRANITE["logits_scaling"] if g else logits


def _mlp(w, p, h, spec, swiglu):
    moe = spec.get("moe")
    if not moe:
        if spec.get("mlp") == "relu2":
            return np.maximum(h @ w[p + "mlp.up_proj.weight"].T, 0) ** 2 @ w[p + "mlp.down_proj.weight"].T
        return swiglu(h, w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"], w[p + "mlp.down_proj.weight"])
    router = {"mixtral": "block_sparse_moe.gate.weight", "qwen": "mlp.gate.weight",
              "granite": "block_sparse_moe.router.layer.weight"}[moe]
    logits = h @ w[p + router].T
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = np.zeros_like(h)
    for t in range(h.shape[0]):
        top = np.argsort(-probs[t])[: spec["top_k"]]
        wt = probs[t, top] / (probs[t, top].sum() if spec["norm_topk"] else 1.0)
        for e, c in zip(top, wt):
            if moe == "mixtral":
                x = p + f"block_sparse_moe.experts.{e}."
                out[t] += c * swiglu(h[t], w[x + "w1.weight"], w[x + "w3.weight"], w[x + "w2.weight"])
            elif moe == "qwen":
                x = p + f"mlp.experts.{e}."
                out[t] += c * swiglu(h[t], w[x + "gate_proj.weight"], w[x + "up_proj.weight"],
                                     w[x + "down_proj.weight"])
            else:
                gate, up = np.split(w[p + "block_sparse_moe.input_linear.weight"][e], 2, axis=0)
                out[t] += c * swiglu(h[t], gate, up, w[p + "block_sparse_moe.output_linear.weight"][e])
    if spec.get("shared"):
        s = p + "mlp.shared_expert."
        gate = 1 / (1 + np.exp(-(h @ w[p + "mlp.shared_expert_gate.weight"].T)))
        out += gate * swiglu(h, w[s + "gate_proj.weight"], w[s + "up_proj.weight"], w[s + "down_proj.weight"])
    return out
