"""Tiny random checkpoints of StarCoder2, Command-R, GLM-4, EXAONE 3, Mistral 3 and Idefics3 /
SmolVLM (text models of the multimodal checkpoints) in their real HF tensor names and config keys,
and one numpy forward pass of the HF computation that covers their differences (norm kind,
parallel block, post-norms, partial rope in adjacent pairs, GELU or SwiGLU MLP, logit scale)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .tiny_llama import RandomWeights, stored_values, train_tokenizer, write_safetensors

# norm: rms | layer (no bias) | layer_bias; rope: half (HF rotate_half) | pairs (interleaved)
FAMILIES = {
    "Starcoder2ForCausalLM": dict(model_type="starcoder2", norm="layer_bias", bias="all", mlp="gelu",
                                  rope="half", tied=True, gguf="starcoder2"),
    "CohereForCausalLM": dict(model_type="cohere", norm="layer", parallel=True, rope="pairs",
                              tied=True, logit_scale=0.0625, gguf="command-r"),
    "Cohere2ForCausalLM": dict(model_type="cohere2", norm="layer", parallel=True, rope="pairs", tied=True,
                               logit_scale=0.25, nope_every=4, n_layer=4, gguf="cohere2"),
    "Glm4ForCausalLM": dict(model_type="glm4", post_norms=True, bias="qkv", mlp="fused", rope="pairs",
                            rot=0.5, gguf="glm4"),
    "ExaoneForCausalLM": dict(model_type="exaone", names="gpt2", rope="half", gguf="exaone"),
    "Qwen2_5_VLForConditionalGeneration": dict(model_type="qwen2_5_vl", names="qwen_vl", rope="half",
                                               bias="qkv", tied=True, gguf="qwen2vl"),
    "Mistral3ForConditionalGeneration": dict(model_type="mistral3", names="mistral3", rope="half",
                                             gguf="mistral3"),
    "Idefics3ForConditionalGeneration": dict(model_type="idefics3", names="idefics3", rope="half",
                                             gguf="llama"),
}
N_EMBD, N_FF, N_HEAD, N_KV, VOCAB = 128, 256, 4, 2, 320


def _names(spec: dict, i: int) -> dict[str, str]:
    if spec.get("names") == "gpt2":   # EXAONE
        p = f"transformer.h.{i}."
        return dict(ln1=p + "ln_1", ln2=p + "ln_2", q=p + "attn.attention.q_proj", k=p + "attn.attention.k_proj",
                    v=p + "attn.attention.v_proj", o=p + "attn.attention.out_proj", gate=p + "mlp.c_fc_0",
                    up=p + "mlp.c_fc_1", down=p + "mlp.c_proj")
    p = {"mistral3": "language_model.model", "qwen_vl": "model.language_model",
         "idefics3": "model.text_model"}.get(spec.get("names"), "model")
    p += f".layers.{i}."
    n = dict(ln1=p + "input_layernorm", ln2=p + "post_attention_layernorm", q=p + "self_attn.q_proj",
             k=p + "self_attn.k_proj", v=p + "self_attn.v_proj", o=p + "self_attn.o_proj",
             gate=p + "mlp.gate_proj", up=p + "mlp.up_proj", down=p + "mlp.down_proj",
             post_attn=p + "post_self_attn_layernorm", post_mlp=p + "post_mlp_layernorm",
             gate_up=p + "mlp.gate_up_proj")
    if spec.get("mlp") == "gelu":
        n.update(up=p + "mlp.c_fc", down=p + "mlp.c_proj")
    return n


def _globals(spec: dict) -> tuple[str, str, str]:
    if spec.get("names") == "gpt2":
        return "transformer.wte", "transformer.ln_f", "lm_head"
    if spec.get("names") == "mistral3":
        return "language_model.model.embed_tokens", "language_model.model.norm", "language_model.lm_head"
    if spec.get("names") == "qwen_vl":   # transformers >= 4.52 names
        return "model.language_model.embed_tokens", "model.language_model.norm", "lm_head"
    if spec.get("names") == "idefics3":
        return "model.text_model.embed_tokens", "model.text_model.norm", "lm_head"
    return "model.embed_tokens", "model.norm", "lm_head"


def build_dense(folder: Path, arch: str, *, n_layer: int = 2, seed: int = 0) -> tuple[dict, dict]:
    spec = dict({"n_layer": n_layer, **FAMILIES[arch]}, arch=arch)
    n_layer = spec["n_layer"]
    folder.mkdir(parents=True, exist_ok=True)
    r = RandomWeights(seed)
    mat, vec = r.mat, r.vec
    E, F, hd = N_EMBD, N_FF, N_EMBD // N_HEAD

    emb, fnorm, head = _globals(spec)
    hf = {emb + ".weight": mat(VOCAB, E, scale=0.5), fnorm + ".weight": vec(E)}
    if spec.get("norm") == "layer_bias":
        hf[fnorm + ".bias"] = mat(E, scale=0.1)
    for i in range(n_layer):
        n = _names(spec, i)
        hf[n["q"] + ".weight"] = mat(N_HEAD * hd, E, scale=0.2)
        hf[n["k"] + ".weight"] = mat(N_KV * hd, E, scale=0.2)
        hf[n["v"] + ".weight"] = mat(N_KV * hd, E)
        hf[n["o"] + ".weight"] = mat(E, N_HEAD * hd)
        if spec.get("bias") in ("qkv", "all"):
            for k, rows in (("q", N_HEAD * hd), ("k", N_KV * hd), ("v", N_KV * hd)):
                hf[n[k] + ".bias"] = mat(rows, scale=0.1)
        if spec.get("bias") == "all":
            hf[n["o"] + ".bias"] = mat(E, scale=0.1)
        norms = ["ln1"] if spec.get("parallel") else ["ln1", "ln2"]
        norms += ["post_attn", "post_mlp"] if spec.get("post_norms") else []
        for k in norms:
            hf[n[k] + ".weight"] = vec(E)
            if spec.get("norm") == "layer_bias":
                hf[n[k] + ".bias"] = mat(E, scale=0.1)
        if spec.get("mlp") == "gelu":
            hf[n["up"] + ".weight"], hf[n["up"] + ".bias"] = mat(F, E), mat(F, scale=0.1)
            hf[n["down"] + ".weight"], hf[n["down"] + ".bias"] = mat(E, F), mat(E, scale=0.1)
        elif spec.get("mlp") == "fused":
            hf[n["gate_up"] + ".weight"], hf[n["down"] + ".weight"] = mat(2 * F, E), mat(E, F)
        else:
            hf[n["gate"] + ".weight"], hf[n["up"] + ".weight"] = mat(F, E), mat(F, E)
            hf[n["down"] + ".weight"] = mat(E, F)
    if not spec.get("tied"):
        hf[head + ".weight"] = mat(VOCAB, E, scale=0.2)
    stored = dict(hf)
    if spec.get("names") == "mistral3":   # the vision side the converter leaves out
        stored["vision_tower.transformer.layers.0.attention.q_proj.weight"] = mat(64, 64)
        stored["multi_modal_projector.linear_1.weight"] = mat(E, 64)
    if spec.get("names") == "qwen_vl":
        stored["model.visual.blocks.0.attn.qkv.weight"] = mat(96, 32)
        stored["model.visual.merger.mlp.0.weight"] = mat(E, 64)
    if spec.get("names") == "idefics3":
        stored["model.vision_model.encoder.layers.0.self_attn.q_proj.weight"] = mat(64, 64)
        stored["model.connector.modality_projection.proj.weight"] = mat(E, 256)
    write_safetensors(folder / "model.safetensors", stored, "BF16")
    (folder / "config.json").write_text(json.dumps(_config(spec, n_layer)))
    train_tokenizer(folder, VOCAB)
    return {k: stored_values(v, "BF16") for k, v in hf.items()}, spec


def _config(spec: dict, n_layer: int) -> dict:
    text = {"model_type": spec["model_type"], "hidden_size": N_EMBD, "intermediate_size": N_FF,
            "num_hidden_layers": n_layer, "num_attention_heads": N_HEAD, "num_key_value_heads": N_KV,
            "vocab_size": VOCAB, "max_position_embeddings": 512, "rope_theta": 10000.0,
            "tie_word_embeddings": bool(spec.get("tied")), "hidden_act": "silu"}
    arch = spec["arch"]
    if arch == "Starcoder2ForCausalLM":
        text.update(norm_epsilon=1e-5, use_bias=True, hidden_act="gelu_pytorch_tanh", sliding_window=4096)
    elif arch == "CohereForCausalLM":
        text.update(layer_norm_eps=1e-5, logit_scale=spec["logit_scale"], use_qk_norm=False,
                    model_max_length=1024, attention_bias=False)
    elif arch == "Cohere2ForCausalLM":   # one global (no-rope) layer in 4, the rest sliding
        text.update(layer_norm_eps=1e-5, logit_scale=spec["logit_scale"], sliding_window=4096,
                    sliding_window_pattern=4, rotary_pct=1.0, attention_bias=False,
                    layer_types=["sliding_attention"] * 3 + ["full_attention"])
    elif arch == "Glm4ForCausalLM":
        text.update(rms_norm_eps=1e-5, partial_rotary_factor=spec["rot"], attention_bias=True,
                    head_dim=N_EMBD // N_HEAD)
    elif arch == "Qwen2_5_VLForConditionalGeneration":   # M-RoPE sections: 16 pairs per head
        text.update(rms_norm_eps=1e-5, rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]},
                    vision_config={"depth": 1, "hidden_size": 32}, image_token_id=5)
    elif arch == "ExaoneForCausalLM":   # EXAONE's own keys: num_layers, layer_norm_epsilon (RMS)
        del text["num_hidden_layers"], text["hidden_act"]
        text.update(num_layers=n_layer, layer_norm_epsilon=1e-5, activation_function="silu")
    elif arch == "Idefics3ForConditionalGeneration":   # SmolVLM's layout: the llama in text_config
        text.update(model_type="llama", architectures=["VLlama3ForCausalLM"], rms_norm_eps=1e-5,
                    head_dim=N_EMBD // N_HEAD)
        return {"architectures": [arch], "model_type": "idefics3", "scale_factor": 2,
                "image_token_id": 7, "text_config": text, "tie_word_embeddings": False,
                "vision_config": {"model_type": "idefics3", "hidden_size": 64, "image_size": 32,
                                  "intermediate_size": 128, "num_attention_heads": 4,
                                  "num_hidden_layers": 1, "patch_size": 4},
                "torch_dtype": "bfloat16"}
    else:
        text.update(model_type="mistral", rms_norm_eps=1e-5, head_dim=N_EMBD // N_HEAD)
        return {"architectures": [arch], "model_type": "mistral3", "text_config": text,
                "vision_config": {"model_type": "pixtral", "hidden_size": 64}, "image_token_index": 10,
                "torch_dtype": "bfloat16"}
    return {"architectures": [arch], **text, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}


def dense_forward(w: dict, tokens: list[int], spec: dict) -> np.ndarray:
    """Logits (n_tokens, vocab) of the HF computation, float64."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    emb, fnorm, head = _globals(spec)
    x = w[emb + ".weight"][tokens]
    n = x.shape[0]
    hd = N_EMBD // N_HEAD
    rot = int(hd * spec.get("rot", 1.0))
    ang = np.outer(np.arange(n), 10000.0 ** (-np.arange(0, rot, 2) / rot))
    mask = np.triu(np.full((n, n), -np.inf), 1)

    def norm(v, name):
        if spec.get("norm", "rms") == "rms":
            return v / np.sqrt((v * v).mean(-1, keepdims=True) + 1e-5) * w[name + ".weight"]
        c = v - v.mean(-1, keepdims=True)
        out = c / np.sqrt((c * c).mean(-1, keepdims=True) + 1e-5) * w[name + ".weight"]
        return out + w.get(name + ".bias", 0)

    def rope(v):
        r, rest = v[..., :rot], v[..., rot:]
        c, s = np.cos(ang), np.sin(ang)
        out = np.empty_like(r)
        if spec["rope"] == "pairs":
            x0, x1 = r[..., 0::2], r[..., 1::2]
            out[..., 0::2], out[..., 1::2] = x0 * c - x1 * s, x0 * s + x1 * c
        else:
            x0, x1 = r[..., : rot // 2], r[..., rot // 2:]
            out[..., : rot // 2], out[..., rot // 2:] = x0 * c - x1 * s, x0 * s + x1 * c
        return np.concatenate([out, rest], -1)

    def lin(h, name):
        return h @ w[name + ".weight"].T + w.get(name + ".bias", 0)

    def silu(v):
        return v / (1 + np.exp(-v))

    def mlp(h, nm):
        if spec.get("mlp") == "gelu":   # gelu_pytorch_tanh
            u = lin(h, nm["up"])
            return lin(0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u ** 3))), nm["down"])
        if spec.get("mlp") == "fused":
            gate, up = np.split(lin(h, nm["gate_up"]), 2, axis=-1)
            return lin(silu(gate) * up, nm["down"])
        return lin(silu(lin(h, nm["gate"])) * lin(h, nm["up"]), nm["down"])

    for i in range(spec["n_layer"]):
        nm = _names(spec, i)
        h = norm(x, nm["ln1"])
        q = lin(h, nm["q"]).reshape(n, N_HEAD, hd).transpose(1, 0, 2)
        k = lin(h, nm["k"]).reshape(n, N_KV, hd).transpose(1, 0, 2)
        v = lin(h, nm["v"]).reshape(n, N_KV, hd).transpose(1, 0, 2)
        if not spec.get("nope_every") or (i + 1) % spec["nope_every"]:
            q, k = rope(q), rope(k)
        k, v = np.repeat(k, N_HEAD // N_KV, 0), np.repeat(v, N_HEAD // N_KV, 0)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = lin((att @ v).transpose(1, 0, 2).reshape(n, N_HEAD * hd), nm["o"])
        if spec.get("parallel"):
            x = x + o + mlp(h, nm)
            continue
        if spec.get("post_norms"):
            o = norm(o, nm["post_attn"])
        x = x + o
        m = mlp(norm(x, nm["ln2"]), nm)
        x = x + (norm(m, nm["post_mlp"]) if spec.get("post_norms") else m)
    out = norm(x, fnorm) @ w.get(head + ".weight", w[emb + ".weight"]).T
    return out * spec.get("logit_scale", 1.0)
