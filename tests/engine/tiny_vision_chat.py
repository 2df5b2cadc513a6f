"""A tiny random Gemma 3 with its vision projector, as GGUF files: the language model
(tests/pipeline/tiny_llama.build_tiny_other) and an mmproj written by our converter from a
SigLIP tower + Gemma 3 projector (core.convert.mmproj). Random weights: a reply changes with the
image, which is what the image-chat tests need. 56x56 images, 7x7 patches, 4 image tokens."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from tests.pipeline.tiny_llama import build_tiny_other, write_safetensors

N_EMBD = 256
IMAGE_TOKENS = 4
IMAGE_SIZE = 56


def build_gemma3_vision(folder: Path, seed: int = 1) -> Path:
    """An HF Gemma3ForConditionalGeneration checkpoint folder (text + vision, F32)."""
    w = build_tiny_other(folder, "Gemma3ForCausalLM", n_embd=N_EMBD)
    rng = np.random.default_rng(seed)
    H, F, L, P, S = 64, 128, 2, 7, IMAGE_SIZE

    def m(*shape, sc=0.05):
        return (rng.standard_normal(shape) * sc).astype(np.float32)

    v = {}
    pre = "vision_tower.vision_model."
    v[pre + "embeddings.patch_embedding.weight"] = m(H, 3, P, P)
    v[pre + "embeddings.patch_embedding.bias"] = m(H)
    v[pre + "embeddings.position_embedding.weight"] = m((S // P) ** 2, H)
    for i in range(L):
        p = pre + f"encoder.layers.{i}."
        for n in "qkv":
            v[p + f"self_attn.{n}_proj.weight"] = m(H, H)
            v[p + f"self_attn.{n}_proj.bias"] = m(H)
        v[p + "self_attn.out_proj.weight"] = m(H, H)
        v[p + "self_attn.out_proj.bias"] = m(H)
        for k in ("layer_norm1", "layer_norm2"):
            v[p + k + ".weight"] = 1 + m(H)
            v[p + k + ".bias"] = m(H)
        v[p + "mlp.fc1.weight"] = m(F, H)
        v[p + "mlp.fc1.bias"] = m(F)
        v[p + "mlp.fc2.weight"] = m(H, F)
        v[p + "mlp.fc2.bias"] = m(H)
    v[pre + "post_layernorm.weight"] = 1 + m(H)
    v[pre + "post_layernorm.bias"] = m(H)
    # scaled up so that the 4 image tokens move a random model's greedy reply
    v["multi_modal_projector.mm_input_projection_weight"] = m(H, N_EMBD, sc=0.5)
    v["multi_modal_projector.mm_soft_emb_norm.weight"] = m(H)
    weights = {("language_model." + k): a for k, a in w.items()}
    weights.update(v)
    write_safetensors(folder / "model.safetensors", weights, "F32")
    tc = json.loads((folder / "config.json").read_text())
    cfg = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
           "text_config": tc, "mm_tokens_per_image": IMAGE_TOKENS,
           "vision_config": {"model_type": "siglip_vision_model", "hidden_size": H,
                             "intermediate_size": F, "num_hidden_layers": L,
                             "num_attention_heads": 4, "image_size": S, "patch_size": P,
                             "layer_norm_eps": 1e-6}}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.5] * 3, "image_std": [0.5] * 3, "image_seq_length": IMAGE_TOKENS}))
    return folder


def build_gguf_pair(out: Path) -> tuple[Path, Path]:
    """(text GGUF, mmproj GGUF) side by side in `out`, as a hub download leaves them."""
    from quantdesk.core.convert.mmproj import open_mmproj_source
    from quantdesk.core.quantize.writer import quantize_model
    hf = build_gemma3_vision(out / "hf")
    text, mmproj = out / "tiny-gemma3-F16.gguf", out / "mmproj-tiny-gemma3-F16.gguf"
    quantize_model(hf, text, "F16")
    quantize_model(open_mmproj_source(hf), mmproj, "F16")
    return text, mmproj


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG (no Pillow in the project): zlib rows with filter byte 0."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def random_image(seed: int) -> bytes:
    """A random 56x56 image (no resize needed) as PNG bytes."""
    rng = np.random.default_rng(seed)
    return png_bytes(rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))
