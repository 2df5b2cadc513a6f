"""A tiny random Llama4ForConditionalGeneration with its vision side in the released shape
(vision_model.* / multi_modal_projector.* next to language_model.*, the text half from
tests/pipeline/tiny_llama4.py) and a float64 numpy forward of transformers' Llama4VisionModel +
Llama4MultiModalProjector on one image tile."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tests.pipeline.tiny_llama import RandomWeights, stored_values, write_safetensors
from tests.pipeline.tiny_llama4 import E as N_EMBD_TEXT
from tests.pipeline.tiny_llama4 import build_llama4

# the released vision_config, shrunk: intermediate = 4 * hidden because pixel shuffle (ratio 0.5)
# folds 4 patches into one vector that the adapter's fc1 (intermediate -> projector_input) reads
HIDDEN, HEADS, LAYERS, PATCH, IMAGE, PROJ = 32, 2, 2, 14, 112, 64
VISION_CONFIG = {
    "model_type": "llama4_vision_model", "hidden_size": HIDDEN, "intermediate_size": 4 * HIDDEN,
    "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_channels": 3,
    "image_size": IMAGE, "patch_size": PATCH, "norm_eps": 1e-5, "hidden_act": "gelu",
    "pixel_shuffle_ratio": 0.5, "projector_input_dim": PROJ, "projector_output_dim": PROJ,
    "vision_output_dim": PROJ, "projector_dropout": 0.0, "attention_dropout": 0.0,
    "multi_modal_projector_bias": False, "rope_theta": 10000, "vision_feature_layer": -1,
    "vision_feature_select_strategy": "default", "initializer_range": 0.02}
# Llama-4-Scout's preprocessor_config.json, the canvas shrunk to one tile of IMAGE pixels
PREPROCESSOR = {
    "image_processor_type": "Llama4ImageProcessorFast", "processor_class": "Llama4Processor",
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_normalize": True,
    "do_rescale": True, "rescale_factor": 1 / 255, "do_resize": True, "do_convert_rgb": True,
    "resample": 2, "size": {"height": IMAGE, "width": IMAGE}, "max_patches": 16,
    "resize_to_max_canvas": False}
V, T = "vision_model.", "vision_model.model.layers."


def build_llama4_vision(folder: Path, seed: int = 1) -> dict[str, np.ndarray]:
    """Writes the checkpoint (BF16, as released); returns the vision tensors as stored."""
    text = build_llama4(folder)          # text tensors as stored, plus two stand-in vision tensors
    r = RandomWeights(seed)
    mat, vec = r.mat, r.vec
    n_pos = (IMAGE // PATCH) ** 2 + 1
    w = {V + "patch_embedding.linear.weight": mat(HIDDEN, 3 * PATCH * PATCH, scale=0.1),
         V + "class_embedding": mat(HIDDEN, scale=0.5),
         V + "positional_embedding_vlm": mat(n_pos, HIDDEN, scale=0.5),
         V + "layernorm_pre.weight": vec(HIDDEN), V + "layernorm_pre.bias": mat(HIDDEN),
         V + "layernorm_post.weight": vec(HIDDEN), V + "layernorm_post.bias": mat(HIDDEN),
         V + "vision_adapter.mlp.fc1.weight": mat(PROJ, 4 * HIDDEN, scale=0.2),
         V + "vision_adapter.mlp.fc2.weight": mat(PROJ, PROJ, scale=0.2),
         "multi_modal_projector.linear_1.weight": mat(N_EMBD_TEXT, PROJ, scale=0.2)}
    for i in range(LAYERS):
        p = f"{T}{i}."
        for k in "qkvo":
            w[p + f"self_attn.{k}_proj.weight"] = mat(HIDDEN, HIDDEN, scale=0.3)
            w[p + f"self_attn.{k}_proj.bias"] = mat(HIDDEN)
        for norm in ("input_layernorm", "post_attention_layernorm"):
            w[p + f"{norm}.weight"], w[p + f"{norm}.bias"] = vec(HIDDEN), mat(HIDDEN)
        w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"] = mat(4 * HIDDEN, HIDDEN, scale=0.3), mat(4 * HIDDEN)
        w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"] = mat(HIDDEN, 4 * HIDDEN, scale=0.1), mat(HIDDEN)
    write_safetensors(folder / "model.safetensors", {**text, **w}, "BF16")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["vision_config"] = VISION_CONFIG
    cfg.update(image_token_index=200092, boi_token_index=200080, eoi_token_index=200081)
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    return {k: stored_values(a, "BF16") for k, a in w.items()}


def _layer_norm(x, g, b, eps=1e-5):          # nn.LayerNorm's default eps (the tower passes none)
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * g + b


_erf = np.vectorize(math.erf)


def _gelu(x):                                # nn.GELU(): the exact erf form
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _rope_angles(side: int, head_dim: int, theta: float) -> np.ndarray:
    """Llama4VisionRotaryEmbedding: per position, one angle per adjacent (re, im) pair; the first
    half of the pairs turn with column + 1, the second half with row + 1; the class token last,
    unturned."""
    freq_dim = head_dim // 2
    freq = 1.0 / theta ** (np.arange(0, freq_dim, 2)[: freq_dim // 2] / freq_dim)
    idx = np.arange(side * side)
    ang = np.concatenate([np.outer(idx % side + 1, freq), np.outer(idx // side + 1, freq)], axis=1)
    return np.vstack([ang, np.zeros(head_dim // 2)])


def _pixel_shuffle(x: np.ndarray, ratio: float) -> np.ndarray:
    """transformers' pixel_shuffle for one image, (patches, channels) -> (patches * r², channels / r²)."""
    n, c = x.shape
    s = int(round(n ** 0.5))
    x = x.reshape(s, int(s * ratio), int(c / ratio)).transpose(1, 0, 2)
    x = x.reshape(int(s * ratio), int(s * ratio), int(c / ratio ** 2)).transpose(1, 0, 2)
    return x.reshape(-1, x.shape[-1])


def llama4_vision_forward(w: dict[str, np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """Image tokens handed to the language model for one IMAGE x IMAGE RGB uint8 tile."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    mean, std = np.array(PREPROCESSOR["image_mean"]), np.array(PREPROCESSOR["image_std"])
    pixels = (rgb.astype(np.float64) / 255 - mean) / std               # (H, W, 3)
    side, hd = IMAGE // PATCH, HIDDEN // HEADS
    # nn.Unfold: one row per patch (row-major), features ordered channel, kernel row, kernel col
    patches = pixels.reshape(side, PATCH, side, PATCH, 3).transpose(0, 2, 4, 1, 3)
    x = patches.reshape(side * side, -1) @ w[V + "patch_embedding.linear.weight"].T
    x = np.vstack([x, w[V + "class_embedding"]]) + w[V + "positional_embedding_vlm"]
    x = _layer_norm(x, w[V + "layernorm_pre.weight"], w[V + "layernorm_pre.bias"])
    ang = _rope_angles(side, hd, VISION_CONFIG["rope_theta"])[:, None, :]   # (n, 1, hd/2)
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v):                                     # (n, heads, hd): complex pairs times e^(i·ang)
        re, im = v[..., 0::2], v[..., 1::2]
        out = np.empty_like(v)
        out[..., 0::2], out[..., 1::2] = re * cos - im * sin, re * sin + im * cos
        return out

    n = x.shape[0]
    for i in range(LAYERS):
        p = f"{T}{i}."

        def lin(h, name):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        h = _layer_norm(x, w[p + "input_layernorm.weight"], w[p + "input_layernorm.bias"])
        q, k, v = (lin(h, f"self_attn.{m}_proj").reshape(n, HEADS, hd) for m in "qkv")
        q, k = rope(q).transpose(1, 0, 2), rope(k).transpose(1, 0, 2)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd)                      # not causal
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + lin((att @ v.transpose(1, 0, 2)).transpose(1, 0, 2).reshape(n, HIDDEN), "self_attn.o_proj")
        h = _layer_norm(x, w[p + "post_attention_layernorm.weight"], w[p + "post_attention_layernorm.bias"])
        x = x + lin(_gelu(lin(h, "mlp.fc1")), "mlp.fc2")
    x = _layer_norm(x, w[V + "layernorm_post.weight"], w[V + "layernorm_post.bias"])[:-1]  # drop class
    x = _pixel_shuffle(x, VISION_CONFIG["pixel_shuffle_ratio"])
    x = _gelu(x @ w[V + "vision_adapter.mlp.fc1.weight"].T)
    x = _gelu(x @ w[V + "vision_adapter.mlp.fc2.weight"].T)
    return x @ w["multi_modal_projector.linear_1.weight"].T
