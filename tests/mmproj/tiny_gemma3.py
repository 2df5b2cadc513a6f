"""A tiny random Gemma3ForConditionalGeneration checkpoint in the real HF shape.

Text half: tests/pipeline/tiny_llama.build_tiny_other(..., "Gemma3ForCausalLM") under
`language_model.` (the released checkpoints, transformers < 4.52) or, with `wrapped=True`, under
transformers >= 4.52's `model.language_model.*` with the vision half as `model.vision_tower.*` and
`model.multi_modal_projector.*`. Vision half: a SigLIP tower (conv patch embedding, learned
position embedding, pre-LN blocks, post-layernorm; no pooling head, as Gemma 3 has
vision_use_head=False) and Gemma 3's projector (mm_soft_emb_norm stored as w with (1 + w) applied,
mm_input_projection_weight of shape (vision hidden, text hidden)).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.pipeline.tiny_llama import build_tiny_other, write_safetensors

# not 0.5 everywhere (the release's values): a channel mix-up must change the image
IMAGE_MEAN = [0.48, 0.45, 0.41]
IMAGE_STD = [0.27, 0.26, 0.28]


@dataclass
class TinyGemma3:
    folder: Path
    vision: dict[str, np.ndarray]     # vision tower + projector, unwrapped HF names
    config: dict                      # config.json
    preprocessor: dict                # preprocessor_config.json
    n_embd_text: int


def siglip_weights(m, pre: str, *, hidden: int, ffn: int, layers: int, patch: int, side: int
                   ) -> dict[str, np.ndarray]:
    """A random SigLIP tower in HF names under `pre`; m(*shape, scale=) draws one tensor."""
    v: dict[str, np.ndarray] = {}
    v[pre + "embeddings.patch_embedding.weight"] = m(hidden, 3, patch, patch, scale=0.1)
    v[pre + "embeddings.patch_embedding.bias"] = m(hidden)
    v[pre + "embeddings.position_embedding.weight"] = m(side * side, hidden, scale=0.5)
    for i in range(layers):
        p = f"{pre}encoder.layers.{i}."
        for n in "qkv":
            v[p + f"self_attn.{n}_proj.weight"] = m(hidden, hidden, scale=0.2)
            v[p + f"self_attn.{n}_proj.bias"] = m(hidden)
        v[p + "self_attn.out_proj.weight"] = m(hidden, hidden, scale=0.1)
        v[p + "self_attn.out_proj.bias"] = m(hidden)
        for n in ("layer_norm1", "layer_norm2"):
            v[p + f"{n}.weight"] = 1 + m(hidden, scale=0.1)
            v[p + f"{n}.bias"] = m(hidden)
        v[p + "mlp.fc1.weight"] = m(ffn, hidden, scale=0.2)
        v[p + "mlp.fc1.bias"] = m(ffn)
        v[p + "mlp.fc2.weight"] = m(hidden, ffn, scale=0.1)
        v[p + "mlp.fc2.bias"] = m(hidden)
    v[pre + "post_layernorm.weight"] = 1 + m(hidden, scale=0.1)
    v[pre + "post_layernorm.bias"] = m(hidden)
    return v


def build_tiny_gemma3(folder: Path, *, wrapped: bool = False, tokens_per_image: int = 4,
                      hidden: int = 64, ffn: int = 128, layers: int = 2, heads: int = 4,
                      patch: int = 7, image_size: int = 56, n_embd_text: int = 256,
                      dtype: str = "F32", seed: int = 1) -> TinyGemma3:
    """image_size // patch patches a side, pooled to sqrt(tokens_per_image) a side (4 per side
    by default: llama.cpp's fixed Gemma 3 factor, so no scale-factor key is written)."""
    folder = Path(folder)
    text = build_tiny_other(folder, "Gemma3ForCausalLM", n_embd=n_embd_text)
    text_cfg = json.loads((folder / "config.json").read_text())
    rng = np.random.default_rng(seed)

    def m(*shape, scale=0.05):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    side = image_size // patch
    v = siglip_weights(m, "vision_tower.vision_model.", hidden=hidden, ffn=ffn, layers=layers,
                       patch=patch, side=side)
    v["multi_modal_projector.mm_input_projection_weight"] = m(hidden, n_embd_text, scale=0.1)
    v["multi_modal_projector.mm_soft_emb_norm.weight"] = m(hidden, scale=0.3)

    if wrapped:   # transformers >= 4.52: model.language_model.layers..., model.vision_tower...
        stored = {"model.language_model." + k.removeprefix("model."): a for k, a in text.items()}
        stored.update({"model." + k: a for k, a in v.items()})
    else:         # the released checkpoints: language_model.model.layers..., vision_tower...
        stored = {"language_model." + k: a for k, a in text.items()}
        stored.update(v)
    write_safetensors(folder / "model.safetensors", stored, dtype)

    text_cfg.pop("architectures", None)
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": 262144,
        "initializer_range": 0.02, "mm_tokens_per_image": tokens_per_image,
        "text_config": text_cfg,
        "vision_config": {
            "model_type": "siglip_vision_model", "hidden_size": hidden, "intermediate_size": ffn,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_channels": 3,
            "image_size": image_size, "patch_size": patch, "hidden_act": "gelu_pytorch_tanh",
            "layer_norm_eps": 1e-6, "attention_dropout": 0.0, "vision_use_head": False},
        "torch_dtype": "float32", "transformers_version": "4.53.0" if wrapped else "4.50.0",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    preprocessor = {
        "do_convert_rgb": None, "do_normalize": True, "do_pan_and_scan": None,
        "do_rescale": True, "do_resize": True, "image_mean": IMAGE_MEAN, "image_std": IMAGE_STD,
        "image_processor_type": "Gemma3ImageProcessor", "image_seq_length": tokens_per_image,
        "processor_class": "Gemma3Processor", "resample": 2,
        "rescale_factor": 1 / 255, "size": {"height": image_size, "width": image_size}}
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=1))
    return TinyGemma3(folder, v, config, preprocessor, n_embd_text)


# ---- the numpy reference forward (float64) -------------------------------------------------------

def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu_tanh(x):  # HF's gelu_pytorch_tanh; llama.cpp's ggml_gelu is the same approximation
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def siglip_tower(w: dict[str, np.ndarray], pre: str, vc: dict, rgb: np.ndarray,
                 mean, std) -> np.ndarray:
    """The SigLIP vision transformer (float64): an image of exactly image_size a side, normalized
    by mean and std, through the conv patch embedding, learned positions, pre-LN blocks and the
    post-layernorm; one row per patch, row-major. `pre` is the tower's name prefix in `w`."""
    eps, heads, patch = vc.get("layer_norm_eps", 1e-6), vc["num_attention_heads"], vc["patch_size"]
    x = (rgb.astype(np.float64) / 255.0 - np.asarray(mean)) / np.asarray(std)    # (S, S, 3)
    side = x.shape[0] // patch
    # Conv2d(kernel = stride = patch), then flatten(2).transpose: patches in row-major order
    patches = x.reshape(side, patch, side, patch, 3).transpose(0, 2, 4, 1, 3)
    patches = patches.reshape(side * side, 3 * patch * patch)
    kernel = w[pre + "embeddings.patch_embedding.weight"].reshape(vc["hidden_size"], -1)
    h = patches @ kernel.T + w[pre + "embeddings.patch_embedding.bias"]
    h = h + w[pre + "embeddings.position_embedding.weight"]
    n, hidden = h.shape
    d = hidden // heads
    for i in range(vc["num_hidden_layers"]):
        p = f"{pre}encoder.layers.{i}."

        def lin(name, t):
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        a = _layer_norm(h, w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"], eps)
        q, k, val = (lin(f"self_attn.{c}_proj", a).reshape(n, heads, d).transpose(1, 0, 2)
                     for c in "qkv")
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = (s @ val).transpose(1, 0, 2).reshape(n, hidden)
        h = h + lin("self_attn.out_proj", o)
        a = _layer_norm(h, w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"], eps)
        h = h + lin("mlp.fc2", _gelu_tanh(lin("mlp.fc1", a)))
    return _layer_norm(h, w[pre + "post_layernorm.weight"], w[pre + "post_layernorm.bias"], eps)


def reference_embeddings(tiny: TinyGemma3, rgb: np.ndarray, *, break_: str | None = None
                         ) -> np.ndarray:
    """What Gemma3ForConditionalGeneration.get_image_features returns for one image of exactly
    image_size x image_size (no resize: llama.cpp copies such an image as it is). `break_` names
    one deliberate mistake, for checking that the comparison notices it."""
    w = {k: a.astype(np.float64) for k, a in tiny.vision.items()}
    vc = tiny.config["vision_config"]
    eps, patch = vc["layer_norm_eps"], vc["patch_size"]
    mean, std = np.array(IMAGE_MEAN), np.array(IMAGE_STD)
    if break_ == "channels":
        mean, std = mean[::-1], std[::-1]
    h = siglip_tower(w, "vision_tower.vision_model.", vc, rgb, mean, std)
    side, hidden = rgb.shape[0] // patch, h.shape[1]
    # Gemma3MultiModalProjector: AvgPool2d over the patch grid, flatten row-major
    per_side = int(round(tiny.config["mm_tokens_per_image"] ** 0.5))
    k = side // per_side
    grid = h.reshape(side, side, hidden)
    if break_ == "pool order":
        grid = grid.transpose(1, 0, 2)
    pooled = grid.reshape(per_side, k, per_side, k, hidden).mean(axis=(1, 3))
    pooled = pooled.reshape(per_side * per_side, hidden)
    norm_w = w["multi_modal_projector.mm_soft_emb_norm.weight"]
    scale = norm_w if break_ == "norm weight" else 1.0 + norm_w      # Gemma3RMSNorm: (1 + w)
    normed = pooled / np.sqrt((pooled ** 2).mean(-1, keepdims=True) + eps) * scale
    return normed @ w["multi_modal_projector.mm_input_projection_weight"]
