"""Tiny random Qwen2-VL / Qwen2.5-VL checkpoints in the real HF layout (text half from
tests/pipeline/tiny_families_dense.py, vision tower + merger here), and a float64 numpy forward of
the HF vision tower and merger on one image that needs no resize.

Layouts: Qwen2.5-VL as transformers >= 4.52 saves it (`model.language_model.*`, `model.visual.*`);
Qwen2-VL as the hub releases were saved (`model.layers.*`, `visual.*`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tests.pipeline.tiny_families_dense import N_EMBD, build_dense
from tests.pipeline.tiny_llama import RandomWeights, stored_values, write_safetensors

PATCH = 14                       # the released patch size
WINDOW_PX = 112                  # Qwen2.5-VL's window_size (pixels)
MEAN = [0.48145466, 0.4578275, 0.40821073]   # the released preprocessor_config.json
STD = [0.26862954, 0.26130258, 0.27577711]

# shrunk towers; depth >= 3 so that gguf-py's block-indexed name map reaches merger.mlp.2
SPECS = {
    "Qwen2_5_VLForConditionalGeneration": dict(
        model_type="qwen2_5_vl", prefix="model.visual.", rms=True, width=64, heads=4, ff=96,
        depth=4, fullatt=[1, 3]),
    "Qwen2VLForConditionalGeneration": dict(
        model_type="qwen2_vl", prefix="visual.", rms=False, width=64, heads=4, ff=128, depth=3),
}


def image(seed: int = 3, width: int = 252, height: int = 140) -> np.ndarray:
    """RGB uint8 (H, W, 3). 252x140 is 9x5 merged tokens: a multiple of patch*merge (28) inside
    clip.cpp's min/max pixels, so libmtmd does not resize it, and (for Qwen2.5) it spans 3x2
    attention windows of 4x4 tokens, two of them partial."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def build_qwenvl(folder: Path, arch: str, seed: int = 0) -> tuple[dict, dict]:
    """Write the checkpoint; return (vision weights as stored, names without the prefix; spec)."""
    spec = dict(SPECS[arch], arch=arch)
    text, _ = build_dense(folder, "Qwen2_5_VLForConditionalGeneration", seed=seed)
    if arch == "Qwen2VLForConditionalGeneration":
        text = {k.replace("model.language_model.", "model."): v for k, v in text.items()}
    vision = _vision_weights(spec, RandomWeights(seed + 1))
    stored = {k: stored_values(v, "BF16") for k, v in vision.items()}
    write_safetensors(folder / "model.safetensors",
                      {**text, **{spec["prefix"] + k: v for k, v in stored.items()}}, "BF16")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(architectures=[arch], model_type=spec["model_type"], rms_norm_eps=1e-6,
               vision_start_token_id=3, vision_end_token_id=4, vision_config=_vision_config(spec))
    (folder / "config.json").write_text(json.dumps(cfg))
    pre = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": PATCH, "temporal_patch_size": 2,
           "merge_size": 2, "image_mean": MEAN, "image_std": STD,
           "image_processor_type": "Qwen2VLImageProcessor",
           "processor_class": "Qwen2_5_VLProcessor" if spec["rms"] else "Qwen2VLProcessor"}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    return stored, spec


def _vision_config(spec: dict) -> dict:
    common = {"depth": spec["depth"], "num_heads": spec["heads"], "in_chans": 3,
              "patch_size": PATCH, "spatial_patch_size": PATCH, "spatial_merge_size": 2,
              "temporal_patch_size": 2, "model_type": spec["model_type"]}
    if spec["rms"]:
        return {**common, "hidden_size": spec["width"], "intermediate_size": spec["ff"],
                "hidden_act": "silu", "out_hidden_size": N_EMBD, "window_size": WINDOW_PX,
                "fullatt_block_indexes": spec["fullatt"], "tokens_per_second": 2}
    return {**common, "embed_dim": spec["width"], "hidden_size": N_EMBD,
            "mlp_ratio": spec["ff"] / spec["width"], "hidden_act": "quick_gelu"}


def _vision_weights(spec: dict, r: RandomWeights) -> dict[str, np.ndarray]:
    D, F = spec["width"], spec["ff"]
    w = {"patch_embed.proj.weight": r.mat(D, 3, 2, PATCH, PATCH, scale=0.03)}
    for i in range(spec["depth"]):
        p = f"blocks.{i}."
        w[p + "norm1.weight"], w[p + "norm2.weight"] = r.vec(D), r.vec(D)
        if not spec["rms"]:
            w[p + "norm1.bias"], w[p + "norm2.bias"] = r.mat(D, scale=0.1), r.mat(D, scale=0.1)
        w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"] = r.mat(3 * D, D, scale=0.15), r.mat(3 * D, scale=0.1)
        w[p + "attn.proj.weight"], w[p + "attn.proj.bias"] = r.mat(D, D, scale=0.1), r.mat(D, scale=0.1)
        if spec["rms"]:
            for n, shape in (("gate_proj", (F, D)), ("up_proj", (F, D)), ("down_proj", (D, F))):
                w[p + f"mlp.{n}.weight"], w[p + f"mlp.{n}.bias"] = r.mat(*shape, scale=0.1), r.mat(shape[0], scale=0.1)
        else:
            w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"] = r.mat(F, D, scale=0.1), r.mat(F, scale=0.1)
            w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"] = r.mat(D, F, scale=0.1), r.mat(D, scale=0.1)
    w["merger.ln_q.weight"] = r.vec(D)
    if not spec["rms"]:
        w["merger.ln_q.bias"] = r.mat(D, scale=0.1)
    w["merger.mlp.0.weight"], w["merger.mlp.0.bias"] = r.mat(4 * D, 4 * D, scale=0.05), r.mat(4 * D, scale=0.1)
    w["merger.mlp.2.weight"], w["merger.mlp.2.bias"] = r.mat(N_EMBD, 4 * D, scale=0.05), r.mat(N_EMBD, scale=0.1)
    return w


def vision_forward(w: dict, spec: dict, rgb: np.ndarray, rope_axes=(0, 1)) -> np.ndarray:
    """(n_tokens, n_embd_text) float64: HF's Qwen2(.5)-VL vision tower + merger on one still image
    (the processor repeats it over the 2 frames of the Conv3D), tokens in raster order of 2x2
    patch groups, as the model hands them to the language model. `rope_axes=(1, 0)` turns the
    rope's row dims with the column and back: a wrong reference the test must reject."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    D, n_head, eps = spec["width"], spec["heads"], 1e-6
    hd = D // n_head
    px = (rgb.astype(np.float64) / 255 - MEAN) / STD                 # (H, W, 3)
    gh, gw = px.shape[0] // PATCH, px.shape[1] // PATCH
    # patch sequence: 2x2 groups in raster order, (dy, dx) inside a group -- the processor's order
    order = [(2 * Y + dy, 2 * X + dx) for Y in range(gh // 2) for X in range(gw // 2)
             for dy in range(2) for dx in range(2)]
    patches = np.stack([px[y * PATCH:(y + 1) * PATCH, x * PATCH:(x + 1) * PATCH].transpose(2, 0, 1)
                        for y, x in order]).reshape(len(order), -1)   # (n, 3*P*P), channel-major
    kernel = w["patch_embed.proj.weight"]                            # (D, 3, 2, P, P)
    x = patches @ (kernel[:, :, 0] + kernel[:, :, 1]).reshape(D, -1).T
    n = x.shape[0]

    # 2-D rotary: the first half of the rotated dims turn with the row, the second with the column
    inv = 1.0 / 10000 ** (np.arange(0, hd // 2, 2) / (hd // 2))
    pos = np.array(order, dtype=np.float64)
    ang = np.concatenate([np.outer(pos[:, rope_axes[0]], inv), np.outer(pos[:, rope_axes[1]], inv)], -1)
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rope(v):                                                     # (heads, n, hd), rotate_half
        rot = np.concatenate([-v[..., hd // 2:], v[..., :hd // 2]], -1)
        return v * cos + rot * sin

    def norm(v, name):
        if spec["rms"]:
            return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w[name + ".weight"]
        c = v - v.mean(-1, keepdims=True)
        return c / np.sqrt((c * c).mean(-1, keepdims=True) + eps) * w[name + ".weight"] + w[name + ".bias"]

    def lin(v, name):
        return v @ w[name + ".weight"].T + w[name + ".bias"]

    # Qwen2.5's window attention: a token sees the tokens of its own window of (112 / 14 / 2)^2
    # merged tokens; windows tile the merged grid from the top left (edge windows are partial)
    g = WINDOW_PX // PATCH // 2
    win = [(y // 2 // g, x // 2 // g) for y, x in order]
    window_mask = np.where(np.array([[a == b for b in win] for a in win]), 0.0, -np.inf)

    for i in range(spec["depth"]):
        p = f"blocks.{i}."
        h = norm(x, p + "norm1")
        q, k, v = np.split(lin(h, p + "attn.qkv"), 3, -1)
        q, k, v = (t.reshape(n, n_head, hd).transpose(1, 0, 2) for t in (q, k, v))
        att = rope(q) @ rope(k).transpose(0, 2, 1) / math.sqrt(hd)
        if spec["rms"] and i not in spec["fullatt"]:
            att = att + window_mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + lin((att @ v).transpose(1, 0, 2).reshape(n, D), p + "attn.proj")
        h = norm(x, p + "norm2")
        if spec["rms"]:
            gate = lin(h, p + "mlp.gate_proj")
            m = lin(gate / (1 + np.exp(-gate)) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
        else:
            u = lin(h, p + "mlp.fc1")
            m = lin(u / (1 + np.exp(-1.702 * u)), p + "mlp.fc2")          # quick_gelu
        x = x + m

    x = norm(x, "merger.ln_q").reshape(n // 4, 4 * D)                 # 2x2 patches side by side
    u = lin(x, "merger.mlp.0")
    u = 0.5 * u * (1 + np.vectorize(math.erf)(u / math.sqrt(2)))      # nn.GELU (erf)
    return lin(u, "merger.mlp.2")
