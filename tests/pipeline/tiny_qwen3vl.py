"""A tiny random Qwen3-VL checkpoint (dense or MoE) in the real config shape and tensor names
(transformers 4.57: text model under `model.language_model.`, vision under `model.visual.`,
`text_config` / `vision_config`), shrunk. Qwen3-VL-MoE's experts are stored as HF stores them:
fused and transposed, gate_up_proj (n_expert, n_embd, 2 * n_ff) and down_proj (n_expert, n_ff,
n_embd).

Returns weights in the canonical (Qwen3 / Qwen3-MoE, per-expert) names that
`tiny_families.family_forward` reads: the reference is the HF text computation with all three
M-RoPE positions equal (text tokens), i.e. plain rotate-half rope.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .tiny_llama import RandomWeights, stored_values, train_tokenizer, write_safetensors

N_EMBD, N_FF, N_HEAD, N_KV, HEAD_DIM, VOCAB = 128, 256, 4, 2, 32, 320
N_EXPERT, TOP_K, N_FF_EXP = 4, 2, 64
SECTIONS = [6, 5, 5]          # rope pairs per head: 16 = HEAD_DIM / 2 (real: [24, 20, 20] of 64)
DEEPSTACK = [1, 2, 3]         # vision layers feeding the first three text layers (real: [5, 11, 17])
VISION = dict(depth=4, width=32, heads=2, ff=64)
PATCH, GRID = 16, 8           # the released patch size; an 8x8 learned position grid (real: 48x48)


def build_qwen3vl(folder: Path, *, moe: bool = False, n_layer: int = 4, tied: bool | None = None,
                  seed: int = 0, vision: dict | None = None) -> tuple[dict, dict]:
    """`vision`: the tower's weights (names after `model.visual.`; tests/mmproj/tiny_qwen3vl.py),
    else a few placeholder tensors the text conversion must leave out."""
    tied = (not moe) if tied is None else tied   # Qwen3-VL-4B ties its head; 30B-A3B does not
    folder.mkdir(parents=True, exist_ok=True)
    r = RandomWeights(seed)
    mat, vec = r.mat, r.vec
    w: dict[str, np.ndarray] = {"model.embed_tokens.weight": mat(VOCAB, N_EMBD, scale=0.5),
                                "model.norm.weight": vec(N_EMBD)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        w[a + "q_proj.weight"] = mat(N_HEAD * HEAD_DIM, N_EMBD, scale=0.2)
        w[a + "k_proj.weight"] = mat(N_KV * HEAD_DIM, N_EMBD, scale=0.2)
        w[a + "v_proj.weight"] = mat(N_KV * HEAD_DIM, N_EMBD)
        w[a + "o_proj.weight"] = mat(N_EMBD, N_HEAD * HEAD_DIM)
        w[a + "q_norm.weight"], w[a + "k_norm.weight"] = vec(HEAD_DIM), vec(HEAD_DIM)
        w[p + "input_layernorm.weight"] = vec(N_EMBD)
        w[p + "post_attention_layernorm.weight"] = vec(N_EMBD)
        if moe:
            w[p + "mlp.gate.weight"] = mat(N_EXPERT, N_EMBD, scale=0.5)
            for e in range(N_EXPERT):
                x = p + f"mlp.experts.{e}."
                w[x + "gate_proj.weight"], w[x + "up_proj.weight"] = mat(N_FF_EXP, N_EMBD), mat(N_FF_EXP, N_EMBD)
                w[x + "down_proj.weight"] = mat(N_EMBD, N_FF_EXP)
        else:
            w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"] = mat(N_FF, N_EMBD), mat(N_FF, N_EMBD)
            w[p + "mlp.down_proj.weight"] = mat(N_EMBD, N_FF)
    if not tied:
        w["lm_head.weight"] = mat(VOCAB, N_EMBD, scale=0.2)
    w = {k: stored_values(v, "BF16") for k, v in w.items()}

    stored: dict[str, np.ndarray] = {}
    for k, v in w.items():
        if ".mlp.experts." in k:
            continue
        stored[k.replace("model.", "model.language_model.", 1) if k.startswith("model.") else k] = v
    if moe:
        for i in range(n_layer):
            x = f"model.layers.{i}.mlp.experts."
            stored[f"model.language_model.layers.{i}.mlp.experts.gate_up_proj"] = np.stack(
                [np.concatenate([w[x + f"{e}.gate_proj.weight"].T, w[x + f"{e}.up_proj.weight"].T], 1)
                 for e in range(N_EXPERT)])
            stored[f"model.language_model.layers.{i}.mlp.experts.down_proj"] = np.stack(
                [w[x + f"{e}.down_proj.weight"].T for e in range(N_EXPERT)])
    if vision is None:   # the vision side the text conversion leaves out
        vision = {"blocks.0.attn.qkv.weight": mat(96, 32), "merger.linear_fc1.weight": mat(128, 128),
                  "deepstack_merger_list.0.linear_fc1.weight": mat(128, 128),
                  "patch_embed.proj.weight": mat(32, 3, 2, PATCH, PATCH)}
    stored.update({"model.visual." + k: v for k, v in vision.items()})
    write_safetensors(folder / "model.safetensors", stored, "BF16")
    (folder / "config.json").write_text(json.dumps(_config(moe, n_layer, tied)))
    train_tokenizer(folder, VOCAB)
    spec = dict(n_layer=n_layer, n_head=N_HEAD, n_head_kv=N_KV, qk_norm="head", tied=tied)
    if moe:
        spec.update(moe="qwen", top_k=TOP_K, norm_topk=True)
    return w, spec


def _config(moe: bool, n_layer: int, tied: bool) -> dict:
    text = {"model_type": "qwen3_vl_moe_text" if moe else "qwen3_vl_text", "hidden_size": N_EMBD,
            "intermediate_size": N_FF, "num_hidden_layers": n_layer, "num_attention_heads": N_HEAD,
            "num_key_value_heads": N_KV, "head_dim": HEAD_DIM, "vocab_size": VOCAB,
            "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "rope_scaling": {"mrope_interleaved": True, "mrope_section": SECTIONS, "rope_type": "default"},
            "tie_word_embeddings": tied, "hidden_act": "silu", "attention_bias": False,
            "bos_token_id": 1, "eos_token_id": 2, "dtype": "bfloat16"}
    if moe:
        text.update(num_experts=N_EXPERT, num_experts_per_tok=TOP_K, moe_intermediate_size=N_FF_EXP,
                    decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=True)
    vision = {"model_type": "qwen3_vl_moe" if moe else "qwen3_vl", "depth": VISION["depth"],
              "hidden_size": VISION["width"], "intermediate_size": VISION["ff"],
              "num_heads": VISION["heads"], "patch_size": PATCH, "spatial_merge_size": 2,
              "temporal_patch_size": 2, "in_channels": 3, "out_hidden_size": N_EMBD,
              "num_position_embeddings": GRID * GRID, "hidden_act": "gelu_pytorch_tanh",
              "deepstack_visual_indexes": DEEPSTACK}
    arch = "Qwen3VLMoeForConditionalGeneration" if moe else "Qwen3VLForConditionalGeneration"
    return {"architectures": [arch], "model_type": "qwen3_vl_moe" if moe else "qwen3_vl",
            "text_config": text, "vision_config": vision, "image_token_id": 5,
            "video_token_id": 6, "vision_start_token_id": 7, "vision_end_token_id": 8,
            "tie_word_embeddings": tied}
