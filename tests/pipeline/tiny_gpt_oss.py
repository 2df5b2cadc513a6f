"""A tiny random gpt-oss checkpoint as OpenAI released them: expert matrices in MXFP4 (uint8
`*_blocks` and E8M0 `*_scales`, gate/up rows interleaved), everything else BF16; and a numpy
forward of the HF computation (attention sinks, q/k/v/o biases, softmax over the top-k router
logits, clamped SwiGLU with alpha 1.702 and limit 7)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .tiny_llama import RandomWeights, stored_values, train_tokenizer, write_safetensors

E, H, KV, D, F, X, TOP_K, VOCAB = 128, 4, 2, 32, 64, 4, 2, 320
# transformers' FP4 table (convert_moe_packed_tensors): element 2j = low nibble of byte j
_LUT = np.array([+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
                 -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def hf_mxfp4(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(X, rows, nb, 16) + (X, rows, nb) → float (X, rows, nb * 32), as transformers dequantizes."""
    vals = np.stack([_LUT[blocks & 0x0F], _LUT[blocks >> 4]], axis=-1).reshape(*blocks.shape[:-1], 32)
    return (vals * np.exp2(scales.astype(np.float64) - 127)[..., None]).reshape(*blocks.shape[:-2], -1)


def build_gpt_oss(folder: Path, *, n_layer: int = 2, seed: int = 0, bf16_experts: bool = False) -> dict:
    """bf16_experts: the experts dequantized and stored input x output in BF16, as the
    re-releases of gpt-oss do (the same values: MXFP4 values are exact in BF16)."""
    folder.mkdir(parents=True, exist_ok=True)
    r = RandomWeights(seed)
    mat, vec = r.mat, r.vec

    def packed(rows, cols):
        return (r.rng.integers(0, 256, (X, rows, cols // 32, 16), dtype=np.uint8),
                r.rng.integers(119, 123, (X, rows, cols // 32), dtype=np.uint8))

    hf = r.lm(VOCAB, E)
    for i in range(n_layer):
        p, a, m = f"model.layers.{i}.", f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
        hf[p + "input_layernorm.weight"], hf[p + "post_attention_layernorm.weight"] = vec(E), vec(E)
        for k, rows in (("q", H * D), ("k", KV * D), ("v", KV * D)):
            hf[a + f"{k}_proj.weight"] = mat(rows, E, scale=0.2)
            hf[a + f"{k}_proj.bias"] = mat(rows, scale=0.1)
        hf[a + "o_proj.weight"], hf[a + "o_proj.bias"] = mat(E, H * D), mat(E, scale=0.1)
        hf[a + "sinks"] = mat(H, scale=1.0)
        hf[m + "router.weight"], hf[m + "router.bias"] = mat(X, E, scale=0.5), mat(X, scale=0.1)
        hf[m + "experts.gate_up_proj_blocks"], hf[m + "experts.gate_up_proj_scales"] = packed(2 * F, E)
        hf[m + "experts.gate_up_proj_bias"] = mat(X, 2 * F, scale=0.1)
        hf[m + "experts.down_proj_blocks"], hf[m + "experts.down_proj_scales"] = packed(E, F)
        hf[m + "experts.down_proj_bias"] = mat(X, E, scale=0.1)
    stored = dict(hf)
    if bf16_experts:
        for i in range(n_layer):
            for w in ("gate_up_proj", "down_proj"):
                x = f"model.layers.{i}.mlp.experts.{w}"
                vals = hf_mxfp4(stored.pop(x + "_blocks"), stored.pop(x + "_scales"))
                stored[x] = np.ascontiguousarray(vals.transpose(0, 2, 1)).astype(np.float32)
    write_safetensors(folder / "model.safetensors", stored, "BF16")
    cfg = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": E,
           "intermediate_size": F, "num_hidden_layers": n_layer, "num_attention_heads": H,
           "num_key_value_heads": KV, "head_dim": D, "num_local_experts": X, "num_experts_per_tok": TOP_K,
           "experts_per_token": TOP_K, "vocab_size": VOCAB, "max_position_embeddings": 1024,
           "rms_norm_eps": 1e-5, "rope_theta": 150000.0, "sliding_window": 128, "swiglu_limit": 7.0,
           "layer_types": ["sliding_attention", "full_attention"] * (n_layer // 2),
           "tie_word_embeddings": False, "attention_bias": True, "hidden_act": "silu",
           "quantization_config": {"quant_method": "mxfp4",
                                   "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]},
           "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}
    if bf16_experts:
        del cfg["quantization_config"]
    (folder / "config.json").write_text(json.dumps(cfg))
    train_tokenizer(folder, VOCAB)
    return {k: (v if v.dtype == np.uint8 else stored_values(v, "BF16")) for k, v in hf.items()}


def q8_0(v: np.ndarray) -> np.ndarray:
    """v as ggml's CPU backend feeds it to an MXFP4 matrix product: rounded to Q8_0 blocks of 32
    (scale max|v|/127 stored as float16), the vec_dot type of MXFP4."""
    b = v.astype(np.float32).reshape(-1, 32)
    d = np.abs(b).max(-1, keepdims=True) / np.float32(127)
    x = b * np.where(d == 0, np.float32(0), np.float32(1) / np.where(d == 0, 1, d))
    q = np.trunc(x + np.copysign(np.float32(0.5), x))          # roundf: halves away from zero
    return (q * d.astype(np.float16).astype(np.float64)).reshape(v.shape)


def gpt_oss_forward(w: dict, tokens: list[int], n_layer: int = 2, q8_inputs: bool = False) -> np.ndarray:
    """q8_inputs: expert inputs rounded as ggml's CPU MXFP4 product does (else exact HF)."""
    rq = q8_0 if q8_inputs else (lambda v: v)
    f = {k: v.astype(np.float64) for k, v in w.items() if v.dtype != np.uint8}
    x = f["model.embed_tokens.weight"][tokens]
    n = x.shape[0]
    ang = np.outer(np.arange(n), 150000.0 ** (-np.arange(0, D, 2) / D))
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))
    mask = np.triu(np.full((n, n), -np.inf), 1)

    def norm(v, g):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + 1e-5) * g

    def rope(v):
        return v * cos + np.concatenate([-v[..., D // 2:], v[..., : D // 2]], -1) * sin

    for i in range(n_layer):
        p, a, m = f"model.layers.{i}.", f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
        h = norm(x, f[p + "input_layernorm.weight"])
        q, k, v = (h @ f[a + f"{t}_proj.weight"].T + f[a + f"{t}_proj.bias"] for t in "qkv")
        q = rope(q.reshape(n, H, D).transpose(1, 0, 2))
        k = np.repeat(rope(k.reshape(n, KV, D).transpose(1, 0, 2)), H // KV, 0)
        v = np.repeat(v.reshape(n, KV, D).transpose(1, 0, 2), H // KV, 0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(D) + mask
        s = np.concatenate([s, np.broadcast_to(f[a + "sinks"][:, None, None], (H, n, 1))], -1)
        s = np.exp(s - s.max(-1, keepdims=True))
        att = (s / s.sum(-1, keepdims=True))[..., :-1]     # the sink takes mass, gives no value
        x = x + (att @ v).transpose(1, 0, 2).reshape(n, H * D) @ f[a + "o_proj.weight"].T + f[a + "o_proj.bias"]
        h = norm(x, f[p + "post_attention_layernorm.weight"])
        gu = hf_mxfp4(w[m + "experts.gate_up_proj_blocks"], w[m + "experts.gate_up_proj_scales"])
        down = hf_mxfp4(w[m + "experts.down_proj_blocks"], w[m + "experts.down_proj_scales"])
        logits = h @ f[m + "router.weight"].T + f[m + "router.bias"]
        out = np.zeros_like(h)
        for t in range(n):
            top = np.argsort(-logits[t])[:TOP_K]
            wt = np.exp(logits[t, top] - logits[t, top].max())
            for e, c in zip(top, wt / wt.sum()):
                y = gu[e] @ rq(h[t]) + f[m + "experts.gate_up_proj_bias"][e]
                gate, up = np.minimum(y[0::2], 7.0), np.clip(y[1::2], -7.0, 7.0)
                glu = gate / (1 + np.exp(-1.702 * gate))
                out[t] += c * (down[e] @ rq((up + 1) * glu) + f[m + "experts.down_proj_bias"][e])
        x = x + out
    return norm(x, f["model.norm.weight"]) @ f["lm_head.weight"].T
