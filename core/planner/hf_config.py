"""A ModelProfile from an HF config.json, for repos that have safetensors but no GGUF yet.

We lay out the tensors convert_hf_to_gguf.py would write for a llama-like decoder (attention or
DeepSeek's latent attention, gated FFN or routed experts with shared ones, norms, embeddings), so `retype()` can price every quant type. When the repo
states its parameter count (safetensors metadata) and our layout misses some (biases, extra norms,
odd blocks), the per-layer matrices are scaled so the total matches.
"""
from __future__ import annotations

from gguf.constants import GGMLQuantizationType as T

from .profile import SWA_PATTERN, ModelProfile, retype

# HF model_type -> llama.cpp architecture name, where they differ.
_ARCH = {"mistral": "llama", "mixtral": "llama", "gemma3_text": "gemma3", "qwen2_moe": "qwen2moe",
         "qwen3_moe": "qwen3moe", "phi3": "phi3", "gpt_oss": "gpt-oss", "deepseek_v2": "deepseek2",
         "deepseek_v3": "deepseek2", "cohere": "command-r", "olmo3": "olmo2", "granitemoe": "granitemoe",
         "llama4_text": "llama4", "glm4_moe": "glm4moe", "qwen3_vl_text": "qwen3vl",
         "qwen3_vl_moe_text": "qwen3vlmoe"}


def _text_config(config: dict) -> dict:
    # Multimodal repos (gemma3, llava...) nest the language model's config.
    return config.get("text_config") or config


def profile_from_hf_config(config: dict, *, parameters: int | None = None,
                           source_type: str = "BF16", name: str | None = None) -> ModelProfile:
    c = _text_config(config)
    n_layer = int(c["num_hidden_layers"])
    model_type = str(c.get("model_type") or config.get("model_type") or "llama")
    # GLM-4.5's MTP layers: llama.cpp's converter writes them after the trunk (DeepSeek-V3's not)
    n_nextn = int(c.get("num_nextn_predict_layers") or 0) if model_type == "glm4_moe" else 0
    n_layer += n_nextn
    n_embd = int(c["hidden_size"])
    n_head = int(c.get("num_attention_heads", 1))
    n_head_kv = int(c.get("num_key_value_heads") or n_head)
    head_dim = int(c.get("head_dim") or n_embd // n_head)
    n_vocab = int(c.get("vocab_size") or config.get("vocab_size"))
    n_ff = int(c.get("intermediate_size_mlp") or c.get("intermediate_size") or 4 * n_embd)
    n_expert = int(c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts") or 0)
    n_ff_exp = int(c.get("moe_intermediate_size") or c.get("intermediate_size") or n_ff)
    arch = "mistral3" if config.get("model_type") == "mistral3" else _ARCH.get(model_type, model_type)
    tied = bool(config.get("tie_word_embeddings", c.get("tie_word_embeddings", False)))
    window = int(c.get("sliding_window") or 0) if (c.get("use_sliding_window", True)) else 0

    rows: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (n_embd, n_vocab)),
                                               ("output_norm.weight", (n_embd,))]
    if not tied:
        rows.append(("output.weight", (n_embd, n_vocab)))
    mla = c.get("kv_lora_rank") is not None and c.get("qk_rope_head_dim") is not None
    for i in range(n_layer):
        p = f"blk.{i}."
        rows += [(p + "attn_norm.weight", (n_embd,)), (p + "ffn_norm.weight", (n_embd,))]
        rows += [(p + n, s) for n, s in (_mla_rows(c, n_embd, n_head) if mla
                                         else _attention_rows(n_embd, n_head, n_head_kv, head_dim))]
        rows += [(p + n, s) for n, s in _ffn_rows(c, i, n_embd, n_ff, n_expert, n_ff_exp)]
        if i >= n_layer - n_nextn:   # GLM-4.5's form; 4.6 leaves out the embed/head copies
            rows += [(p + "nextn.eh_proj.weight", (2 * n_embd, n_embd)), (p + "nextn.enorm.weight", (n_embd,)),
                     (p + "nextn.hnorm.weight", (n_embd,)), (p + "nextn.shared_head_norm.weight", (n_embd,)),
                     (p + "nextn.embed_tokens.weight", (n_embd, n_vocab)),
                     (p + "nextn.shared_head_head.weight", (n_embd, n_vocab))]
    if parameters:
        rows = _scale_layers(rows, parameters)
    src = T[source_type.upper()] if source_type.upper() in T.__members__ else T.BF16
    # gpt-oss ships its experts in MXFP4, and the converter carries them so
    mx = str((c.get("quantization_config") or config.get("quantization_config") or {}).get("quant_method")) == "mxfp4"
    tensors = tuple((n, s, int(T.MXFP4) if mx and len(s) == 3 and "_exps" in n
                     else int(src) if len(s) >= 2 else int(T.F32)) for n, s in rows)
    swa = _swa_layers(c, arch, n_layer) if window else (False,) * n_layer
    head_k = head_v = head_dim
    if mla:   # llama.cpp caches MLA's compressed latent (+ rope key) as one K head, and no V
        n_head_kv = 1
        head_k, head_v = int(c["kv_lora_rank"]) + int(c["qk_rope_head_dim"]), 0
    profile = ModelProfile(
        name=name or str(config.get("_name_or_path") or model_type), architecture=arch,
        file_type=source_type.upper(), n_layer=n_layer, n_embd=n_embd, n_vocab=n_vocab,
        n_ctx_train=int(c.get("max_position_embeddings") or 0), n_ff=n_ff_exp if n_expert else n_ff,
        n_head=(n_head,) * n_layer, n_head_kv=(n_head_kv,) * (n_layer - n_nextn) + (0,) * n_nextn,
        head_dim_k=head_k, head_dim_v=head_v, swa_window=window, swa_layers=swa, tensors=tensors,
        n_expert=n_expert, n_nextn=n_nextn)
    return profile


def _attention_rows(n_embd: int, n_head: int, n_head_kv: int, head_dim: int):
    q, kv = n_head * head_dim, n_head_kv * head_dim
    return [("attn_q.weight", (n_embd, q)), ("attn_k.weight", (n_embd, kv)),
            ("attn_v.weight", (n_embd, kv)), ("attn_output.weight", (q, n_embd))]


def _mla_rows(c: dict, n_embd: int, n_head: int):
    """DeepSeek's multi-head latent attention, as llama.cpp's deepseek2 stores it (ggml order)."""
    r, nope, rope, v = (int(c[k]) for k in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                                             "v_head_dim"))
    q_rank = int(c.get("q_lora_rank") or 0)
    rows = ([("attn_q_a_norm.weight", (q_rank,)), ("attn_q_a.weight", (n_embd, q_rank)),
             ("attn_q_b.weight", (q_rank, n_head * (nope + rope)))] if q_rank
            else [("attn_q.weight", (n_embd, n_head * (nope + rope)))])
    return rows + [("attn_kv_a_mqa.weight", (n_embd, r + rope)), ("attn_kv_a_norm.weight", (r,)),
                   ("attn_k_b.weight", (nope, r, n_head)), ("attn_v_b.weight", (r, v, n_head)),
                   ("attn_output.weight", (n_head * v, n_embd))]


def _ffn_rows(c: dict, i: int, n_embd: int, n_ff: int, n_expert: int, n_ff_exp: int):
    """A dense MLP, or routed experts (3-D) plus the shared expert(s) where the config has them:
    Qwen2-MoE's gated `shared_expert_intermediate_size`, DeepSeek's `n_shared_experts` experts of
    `moe_intermediate_size` fused into one; DeepSeek's first `first_k_dense_replace` layers dense."""
    step = int(c.get("interleave_moe_layer_step") or 1)   # Llama 4: experts every step-th layer
    if not n_expert or i < int(c.get("first_k_dense_replace") or 0) or (i + 1) % step:
        return [("ffn_gate.weight", (n_embd, n_ff)), ("ffn_up.weight", (n_embd, n_ff)),
                ("ffn_down.weight", (n_ff, n_embd))]
    rows = [("ffn_gate_inp.weight", (n_embd, n_expert)),
            ("ffn_gate_exps.weight", (n_embd, n_ff_exp, n_expert)),
            ("ffn_up_exps.weight", (n_embd, n_ff_exp, n_expert)),
            ("ffn_down_exps.weight", (n_ff_exp, n_embd, n_expert))]
    shared = int(c.get("shared_expert_intermediate_size") or 0)
    if shared:
        rows.append(("ffn_gate_inp_shexp.weight", (n_embd,)))
    elif c.get("n_shared_experts"):
        shared = int(c["n_shared_experts"]) * n_ff_exp
    elif str(c.get("model_type")) == "llama4_text":   # one shared expert as wide as the others
        shared = n_ff_exp
    if shared:
        rows += [("ffn_gate_shexp.weight", (n_embd, shared)), ("ffn_up_shexp.weight", (n_embd, shared)),
                 ("ffn_down_shexp.weight", (shared, n_embd))]
    return rows


def _swa_layers(c: dict, arch: str, n_layer: int) -> tuple[bool, ...]:
    """Which layers slide: `layer_types` (newer configs), `sliding_window_pattern`, else the
    pattern llama.cpp hard-codes for the architecture (every layer when it has none)."""
    types = c.get("layer_types")
    if isinstance(types, list) and len(types) >= n_layer:
        return tuple(t == "sliding_attention" for t in types[:n_layer])
    pattern = c.get("sliding_window_pattern")
    pattern = int(pattern) if isinstance(pattern, int) and pattern > 0 else SWA_PATTERN.get(arch, 1)
    return tuple((i % pattern < pattern - 1) if pattern > 1 else True for i in range(n_layer))


def _scale_layers(rows, parameters: int):
    """Stretch each layer matrix's last dimension so the model totals `parameters` weights."""
    def count(shape):
        n = 1
        for d in shape:
            n *= d
        return n
    fixed = sum(count(s) for n, s in rows if not n.startswith("blk.") or len(s) < 2)
    scalable = sum(count(s) for n, s in rows if n.startswith("blk.") and len(s) >= 2)
    if scalable == 0 or parameters <= fixed:
        return rows
    ratio = (parameters - fixed) / scalable
    if abs(ratio - 1) < 0.01:
        return rows
    return [(n, s[:-1] + (max(1, round(s[-1] * ratio)),))
            if n.startswith("blk.") and len(s) >= 2 else (n, s) for n, s in rows]


def estimate_for_type(config: dict, qtype: str, *, parameters: int | None = None) -> ModelProfile:
    """Shortcut for the hub: an HF config + parameter count priced as one quant type."""
    return retype(profile_from_hf_config(config, parameters=parameters), qtype)
