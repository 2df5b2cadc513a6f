"""A tiny random Mistral Small 3.x (Mistral3ForConditionalGeneration) or Pixtral-12B
(LlavaForConditionalGeneration, `pixtral` vision_config) checkpoint in the real HF tensor names and
config keys, and a float64 numpy forward of its vision tower + projector as transformers computes
it (modeling_pixtral.py, modeling_mistral3.py / modeling_llava.py), [IMG_BREAK] rows included.

The text half is tests/pipeline/tiny_families_dense.py's Mistral 3 (hidden 128, vocab 320); its
tokenizer is retrained here with Mistral's image tokens as added special tokens, since the
converter takes [IMG_BREAK]'s id from the tokenizer files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tests.pipeline.tiny_families_dense import N_EMBD, VOCAB, build_dense
from tests.pipeline.tiny_llama import RandomWeights, stored_values, train_tokenizer, write_safetensors

# vision tower: hidden 64, 4 heads of 16, 2 layers, 4x4 patches; 2x2 patch merger (Mistral 3)
HIDDEN, N_HEAD, N_FF, N_LAYER, PATCH, IMAGE_SIZE, MERGE = 64, 4, 128, 2, 4, 64, 2
IMAGE_TOKENS = ["[IMG]", "[IMG_BREAK]", "[IMG_END]"]      # ids 3, 4, 5 after the three below
MEAN = [0.48145466, 0.4578275, 0.40821073]                # Mistral Small 3.1's preprocessor
STD = [0.26862954, 0.26130258, 0.27577711]
EPS = 1e-5


def _tokenizer(folder: Path) -> dict[str, int]:
    return train_tokenizer(folder, VOCAB, tuple(IMAGE_TOKENS))


def _vision_weights(r: RandomWeights, llava: bool) -> dict[str, np.ndarray]:
    mat, vec = r.mat, r.vec
    v = {"vision_tower.patch_conv.weight": mat(HIDDEN, 3, PATCH, PATCH, scale=0.1),
         "vision_tower.ln_pre.weight": vec(HIDDEN)}
    for i in range(N_LAYER):
        p = f"vision_tower.transformer.layers.{i}."
        for k in "qkvo":
            v[p + f"attention.{k}_proj.weight"] = mat(HIDDEN, HIDDEN, scale=0.15)
        v[p + "attention_norm.weight"], v[p + "ffn_norm.weight"] = vec(HIDDEN), vec(HIDDEN)
        v[p + "feed_forward.gate_proj.weight"] = mat(N_FF, HIDDEN, scale=0.15)
        v[p + "feed_forward.up_proj.weight"] = mat(N_FF, HIDDEN, scale=0.15)
        v[p + "feed_forward.down_proj.weight"] = mat(HIDDEN, N_FF, scale=0.1)
    m = "multi_modal_projector."
    if llava:   # LlavaMultiModalProjector: linear_1 / GELU / linear_2, with biases
        v[m + "linear_1.weight"], v[m + "linear_1.bias"] = mat(N_EMBD, HIDDEN, scale=0.15), mat(N_EMBD)
        v[m + "linear_2.weight"], v[m + "linear_2.bias"] = mat(N_EMBD, N_EMBD, scale=0.1), mat(N_EMBD)
    else:       # Mistral3MultiModalProjector: norm, patch merger, then the two linears, no biases
        v[m + "norm.weight"] = vec(HIDDEN)
        v[m + "patch_merger.merging_layer.weight"] = mat(HIDDEN, HIDDEN * MERGE * MERGE, scale=0.1)
        v[m + "linear_1.weight"] = mat(N_EMBD, HIDDEN, scale=0.15)
        v[m + "linear_2.weight"] = mat(N_EMBD, N_EMBD, scale=0.1)
    return v


def _wrapped(name: str) -> str:
    """transformers >= 4.52's names (model.vision_tower..., model.language_model..., lm_head)."""
    if name.startswith("language_model.model."):
        return "model.language_model." + name[len("language_model.model."):]
    if name.startswith("language_model.lm_head"):
        return name[len("language_model."):]
    return "model." + name


def build_tiny_pixtral(folder: Path, *, llava: bool = False, wrapped: bool = False,
                       seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """Write config.json, preprocessor_config.json, tokenizer and model.safetensors (BF16) to
    `folder`. Returns (weights as stored, under the un-wrapped names; facts for the reference)."""
    text, _ = build_dense(folder, "Mistral3ForConditionalGeneration", seed=seed)
    ids = _tokenizer(folder)
    vision = _vision_weights(RandomWeights(seed + 1), llava)
    stored = {**text, **vision}
    write_safetensors(folder / "model.safetensors",
                      {(_wrapped(k) if wrapped else k): a for k, a in stored.items()}, "BF16")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(image_token_index=ids["[IMG]"], projector_hidden_act="gelu", vision_feature_layer=-1,
               vision_config={"model_type": "pixtral", "hidden_size": HIDDEN, "intermediate_size": N_FF,
                              "num_hidden_layers": N_LAYER, "num_attention_heads": N_HEAD,
                              "head_dim": HIDDEN // N_HEAD, "hidden_act": "silu", "image_size": IMAGE_SIZE,
                              "patch_size": PATCH, "num_channels": 3, "rope_theta": 10000.0,
                              "attention_dropout": 0.0, "initializer_range": 0.02})
    if llava:   # mistral-community/pixtral-12b's shape
        cfg.update(architectures=["LlavaForConditionalGeneration"], model_type="llava")
    else:
        cfg.update(spatial_merge_size=MERGE, multimodal_projector_bias=False)
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "PixtralImageProcessor", "do_resize": True, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": MEAN, "image_std": STD,
        "patch_size": {"height": PATCH, "width": PATCH}, "size": {"longest_edge": IMAGE_SIZE},
        "resample": 3, "do_convert_rgb": True}))
    (folder / "processor_config.json").write_text(json.dumps({
        "image_break_token": "[IMG_BREAK]", "image_end_token": "[IMG_END]", "image_token": "[IMG]",
        "patch_size": PATCH, "processor_class": "PixtralProcessor",
        **({} if llava else {"spatial_merge_size": MERGE})}))
    weights = {k: stored_values(a, "BF16") for k, a in stored.items()}
    return weights, {"llava": llava, "img_break": ids["[IMG_BREAK]"]}


# --- the reference forward ------------------------------------------------------------------
def _rms(x, w):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * w


def _rope_angles(rows: int, cols: int, head_dim: int, theta: float = 10000.0) -> np.ndarray:
    """PixtralRotaryEmbedding: even frequencies turn with the patch row, odd ones with the column."""
    freqs = theta ** (-np.arange(0, head_dim, 2) / head_dim)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    ang = np.concatenate([r.reshape(-1, 1) * freqs[0::2], c.reshape(-1, 1) * freqs[1::2]], -1)
    return np.concatenate([ang, ang], -1)                  # (n_patches, head_dim), rotate_half form


def _rotate(x, ang):
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * np.cos(ang) + rot * np.sin(ang)


_erf = np.vectorize(math.erf)


def pixtral_reference(w: dict[str, np.ndarray], facts: dict, rgb: np.ndarray) -> np.ndarray:
    """(n_image_tokens, N_EMBD) float64: what the projector hands the language model for `rgb`
    (H x W x 3 uint8, sides multiples of the patch (x merge) size so nothing is resized), with
    the [IMG_BREAK] embedding after every row of tokens but the last, as libmtmd lays them out."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    px = (rgb.astype(np.float64) / 255 - MEAN) / STD                    # (H, W, 3)
    rows, cols = rgb.shape[0] // PATCH, rgb.shape[1] // PATCH
    # the patch convolution (no bias), patches in row-major order
    patches = px.reshape(rows, PATCH, cols, PATCH, 3).transpose(0, 2, 4, 1, 3).reshape(rows * cols, -1)
    x = patches @ w["vision_tower.patch_conv.weight"].reshape(HIDDEN, -1).T
    x = _rms(x, w["vision_tower.ln_pre.weight"])
    n, hd = x.shape[0], HIDDEN // N_HEAD
    ang = _rope_angles(rows, cols, hd)
    for i in range(N_LAYER):
        p = f"vision_tower.transformer.layers.{i}."
        h = _rms(x, w[p + "attention_norm.weight"])
        q, k, v = (h @ w[p + f"attention.{t}_proj.weight"].T for t in "qkv")
        q, k, v = (t.reshape(n, N_HEAD, hd).transpose(1, 0, 2) for t in (q, k, v))
        q, k = _rotate(q, ang), _rotate(k, ang)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + (att @ v).transpose(1, 0, 2).reshape(n, HIDDEN) @ w[p + "attention.o_proj.weight"].T
        h = _rms(x, w[p + "ffn_norm.weight"])
        g = h @ w[p + "feed_forward.gate_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ w[p + "feed_forward.up_proj.weight"].T)) \
            @ w[p + "feed_forward.down_proj.weight"].T
    m = "multi_modal_projector."
    out_rows, out_cols = rows, cols
    if not facts["llava"]:
        x = _rms(x, w[m + "norm.weight"])
        # Mistral3PatchMerger: unfold(kernel = stride = MERGE) over the (d, rows, cols) grid →
        # one token per MERGE x MERGE block, features ordered (channel, block row, block column)
        out_rows, out_cols = rows // MERGE, cols // MERGE
        grid = x.reshape(out_rows, MERGE, out_cols, MERGE, HIDDEN).transpose(0, 2, 4, 1, 3)
        x = grid.reshape(out_rows * out_cols, HIDDEN * MERGE * MERGE) @ w[m + "patch_merger.merging_layer.weight"].T
    h = x @ w[m + "linear_1.weight"].T + w.get(m + "linear_1.bias", 0)
    h = 0.5 * h * (1 + _erf(h / np.sqrt(2)))                            # nn.GELU (erf)
    h = h @ w[m + "linear_2.weight"].T + w.get(m + "linear_2.bias", 0)
    brk = w["language_model.model.embed_tokens.weight"][facts["img_break"]]
    lines = [np.vstack([h[r * out_cols:(r + 1) * out_cols], brk[None]]) for r in range(out_rows)]
    return np.vstack(lines)[:-1]
