"""A tiny random Idefics3ForConditionalGeneration (SmolVLM) checkpoint in the real HF shape.

Text half: tests/pipeline/tiny_families_dense's Idefics3 family (a llama under
`model.text_model.*`, configured by `text_config`, lm_head at the top). Vision half: a SigLIP
tower under `model.vision_model.*` (tiny_gemma3's) and the connector: a pixel shuffle by the
config's `scale_factor`, then `model.connector.modality_projection.proj` (no bias) of shape
(text hidden, vision hidden * scale_factor**2). config.json and preprocessor_config.json carry
the released SmolVLM-Instruct keys with shrunk values: an image is resized so that its longest
edge is `size.longest_edge` (here two tiles) and cut into `image_size` tiles plus an overview.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.pipeline.tiny_families_dense import N_EMBD, build_dense
from tests.pipeline.tiny_llama import write_safetensors

from .tiny_gemma3 import siglip_tower, siglip_weights

ARCH = "Idefics3ForConditionalGeneration"
# not 0.5 everywhere (the release's values): a channel mix-up must change the image
IMAGE_MEAN = [0.48, 0.45, 0.41]
IMAGE_STD = [0.27, 0.26, 0.28]
TOWER = "model.vision_model."
PROJ = "model.connector.modality_projection.proj.weight"


@dataclass
class TinyIdefics3:
    folder: Path
    vision: dict[str, np.ndarray]     # vision tower + connector, HF names
    config: dict                      # config.json
    preprocessor: dict                # preprocessor_config.json
    n_embd_text: int

    @property
    def tokens_per_tile(self) -> int:
        v = self.config["vision_config"]
        return ((v["image_size"] // v["patch_size"]) // self.config["scale_factor"]) ** 2


def build_tiny_idefics3(folder: Path, *, arch: str = ARCH, scale_factor: int = 2, hidden: int = 64,
                        ffn: int = 128, layers: int = 2, heads: int = 4, patch: int = 4,
                        image_size: int = 32, tiles_per_edge: int = 2, dtype: str = "F32",
                        seed: int = 1) -> TinyIdefics3:
    folder = Path(folder)
    text, _ = build_dense(folder, ARCH)      # also writes the tokenizer
    rng = np.random.default_rng(seed)

    def m(*shape, scale=0.05):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    v = siglip_weights(m, TOWER, hidden=hidden, ffn=ffn, layers=layers, patch=patch,
                       side=image_size // patch)
    v[PROJ] = m(N_EMBD, hidden * scale_factor ** 2, scale=0.1)
    write_safetensors(folder / "model.safetensors", {**text, **v}, dtype)

    config = json.loads((folder / "config.json").read_text())
    config.update(architectures=[arch], scale_factor=scale_factor, torch_dtype="float32")
    config["vision_config"] = {
        "model_type": "idefics3", "hidden_size": hidden, "image_size": image_size,
        "intermediate_size": ffn, "max_image_size": {"longest_edge": image_size},
        "num_attention_heads": heads, "num_hidden_layers": layers, "patch_size": patch,
        "size": {"longest_edge": image_size * tiles_per_edge}, "layer_norm_eps": 1e-6}
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    preprocessor = {
        "do_convert_rgb": True, "do_image_splitting": True, "do_normalize": True, "do_pad": True,
        "do_rescale": True, "do_resize": True, "image_mean": IMAGE_MEAN, "image_std": IMAGE_STD,
        "image_processor_type": "Idefics3ImageProcessor",
        "max_image_size": {"longest_edge": image_size}, "processor_class": "Idefics3Processor",
        "resample": 1, "rescale_factor": 1 / 255,
        "size": {"longest_edge": image_size * tiles_per_edge}}
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=1))
    return TinyIdefics3(folder, v, config, preprocessor, N_EMBD)


# ---- the numpy reference forward (float64) -------------------------------------------------------

def pixel_shuffle(x: np.ndarray, s: int, *, break_: str | None = None) -> np.ndarray:
    """transformers' Idefics3Connector.pixel_shuffle for one image: (seq, D) -> (seq/s², D·s²)."""
    seq, d = x.shape
    side = int(round(seq ** 0.5))
    x = x.reshape(side, side // s, d * s)             # s neighbouring columns side by side
    if break_ != "shuffle order":
        x = x.transpose(1, 0, 2)
    x = x.reshape(side // s, side // s, d * s * s)    # then s neighbouring rows
    x = x.transpose(1, 0, 2)
    return x.reshape(seq // (s * s), d * s * s)


def reference_tile(tiny: TinyIdefics3, rgb: np.ndarray, *, break_: str | None = None
                   ) -> np.ndarray:
    """Idefics3Model.get_image_features for one tile of exactly image_size a side."""
    w = {k: a.astype(np.float64) for k, a in tiny.vision.items()}
    mean, std = np.array(IMAGE_MEAN), np.array(IMAGE_STD)
    if break_ == "channels":
        mean, std = mean[::-1], std[::-1]
    h = siglip_tower(w, TOWER, tiny.config["vision_config"], rgb, mean, std)
    return pixel_shuffle(h, tiny.config["scale_factor"], break_=break_) @ w[PROJ].T


def reference_tiles(tiny: TinyIdefics3, rgb: np.ndarray, *, break_: str | None = None
                    ) -> np.ndarray:
    """The tiles of an image already at the longest edge, row by row (the processor's order:
    <row_1_col_1> ... then the overview), stacked; the overview itself is not included."""
    t = tiny.config["vision_config"]["image_size"]
    return np.concatenate([reference_tile(tiny, rgb[y:y + t, x:x + t], break_=break_)
                           for y in range(0, rgb.shape[0], t) for x in range(0, rgb.shape[1], t)])
