"""Llama 4 mmproj: a tiny Llama4ForConditionalGeneration's vision tower + projector written as
llama.cpp's `llama4` clip file, loaded by libmtmd next to the converted text half; the image
tokens it hands the language model are transformers' computation (numpy, float64), and the keys,
tensor names and types are the pinned converter's (one name corrected, see PINNED_MISNAMED)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.convert.errors import ConvertError
from quantdesk.core.convert.mmproj import VISION_ADAPTERS, open_mmproj_source, vision_refusal
from quantdesk.core.convert.mmproj.llama4 import Llama4Vision
from quantdesk.core.quantize import quantize_model

from tests.pipeline.tiny_llama4 import E as N_EMBD_TEXT

from .checks import relative_error
from .mtmd_probe import image_embeddings_in_child
from .tiny_llama4_vision import (HEADS, HIDDEN, IMAGE, LAYERS, PATCH, PROJ, build_llama4_vision,
                                 llama4_vision_forward)

# Measured on this checkpoint (max |error| / max |value|): 1.4e-3 for F16, 7e-4 for F32. ggml's
# CPU matmul rounds the activations to F16 against F16 weights, and its GELU is the tanh form
# read from an F16 table where transformers' is erf (2.3e-4 of the gap). A real mistake (rope
# axes swapped, a norm bias dropped, quick GELU, tokens reordered) costs 1.5e-2 or more.
TOLERANCE = {"F16": 5e-3, "F32": 2e-3}
TOKENS_PER_SIDE = IMAGE // PATCH // 2          # pixel shuffle ratio 0.5

# clip.* keys of the pinned converter's MmprojModel + Llama4VisionModel.set_gguf_parameters
KEYS = {"clip.has_vision_encoder": True, "clip.vision.projection_dim": N_EMBD_TEXT,
        "clip.vision.image_size": IMAGE, "clip.vision.patch_size": PATCH,
        "clip.vision.embedding_length": HIDDEN, "clip.vision.feed_forward_length": 4 * HIDDEN,
        "clip.vision.block_count": LAYERS, "clip.vision.attention.head_count": HEADS,
        "clip.vision.image_mean": [0.5] * 3, "clip.vision.image_std": [0.5] * 3,
        "clip.projector_type": "llama4", "clip.vision.attention.layer_norm_epsilon": 1e-5,
        "clip.vision.projector.scale_factor": 2, "clip.use_gelu": True}


def pinned_tensors() -> dict[str, str]:
    """GGUF name -> type the pinned converter writes at F16 (prepare_tensors' rules: 1-D and
    the position table F32, patch_embd forced F16, other matrices the file type)."""
    t = {"v.patch_embd.weight": "F16", "v.class_embd": "F32", "v.position_embd.weight": "F32",
         "mm.model.mlp.1.weight": "F16", "mm.model.mlp.2.weight": "F16", "mm.model.fc.weight": "F16"}
    for norm in ("v.pre_ln", "v.post_ln"):
        t[f"{norm}.weight"] = t[f"{norm}.bias"] = "F32"
    for i in range(LAYERS):
        for m in ("attn_q", "attn_k", "attn_v", "attn_out", "ffn_up", "ffn_down"):
            t[f"v.blk.{i}.{m}.weight"], t[f"v.blk.{i}.{m}.bias"] = "F16", "F32"
        for norm in ("ln1", "attn_post_norm"):
            t[f"v.blk.{i}.{norm}.weight"] = t[f"v.blk.{i}.{norm}.bias"] = "F32"
    return t


# The one name we write differently: the pinned gguf-py maps post_attention_layernorm to Gemma 4's
# attn_post_norm (the later of two entries for the same HF name), which clip.cpp's llama4 graph
# applies to the attention output; ln2 is its pre-FFN norm, where transformers has this norm.
PINNED_MISNAMED = {f"v.blk.{i}.attn_post_norm.{s}": f"v.blk.{i}.ln2.{s}"
                   for i in range(LAYERS) for s in ("weight", "bias")}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama4v")
    weights = build_llama4_vision(folder / "hf")
    text = quantize_model(folder / "hf", folder / "text.gguf", "F16").path
    mmproj = quantize_model(open_mmproj_source(folder / "hf"), folder / "mmproj.gguf", "F16").path
    rgb = np.random.default_rng(5).integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8)
    return folder, weights, text, mmproj, rgb


def in_libmtmd_order(tokens: np.ndarray) -> np.ndarray:
    """transformers' image tokens in the order libmtmd emits them: its pixel shuffle
    (tools/mtmd/models/llama4.cpp, the second permute commented out) walks the merged grid column
    by column where transformers walks it row by row; each token's vector is the same."""
    s = TOKENS_PER_SIDE
    return tokens.reshape(s, s, -1).transpose(1, 0, 2).reshape(s * s, -1)


@pytest.mark.parametrize("ftype", ["F16", "F32"])
def test_libmtmd_image_tokens_equal_transformers_numpy(converted, tmp_path, ftype):
    folder, weights, text, mmproj, rgb = converted
    if ftype != "F16":
        mmproj = quantize_model(open_mmproj_source(folder / "hf", ftype), tmp_path / "m.gguf", ftype).path
    got = image_embeddings_in_child(text, mmproj, rgb)
    assert got.shape == (TOKENS_PER_SIDE ** 2, N_EMBD_TEXT)
    want = llama4_vision_forward(weights, rgb)
    assert relative_error(got, in_libmtmd_order(want)) < TOLERANCE[ftype]
    assert relative_error(got, want) > 0.1       # the order is a real difference, not a no-op


def test_pinned_converters_norm_name_gives_other_tokens(converted, tmp_path, monkeypatch):
    """Why we do not copy that one name: libmtmd loads the pinned naming without complaint and
    computes something else."""
    folder, weights, text, _, rgb = converted

    class PinnedNames(Llama4Vision):
        def gguf_name(self, hf_name):
            return super().gguf_name(hf_name).replace(".ln2.", ".attn_post_norm.")

    monkeypatch.setitem(VISION_ADAPTERS, "Llama4ForConditionalGeneration", PinnedNames)
    pinned = quantize_model(open_mmproj_source(folder / "hf"), tmp_path / "pinned.gguf", "F16").path
    got = image_embeddings_in_child(text, pinned, rgb)
    assert relative_error(got, in_libmtmd_order(llama4_vision_forward(weights, rgb))) > 0.1


def test_keys_and_tensors_are_the_pinned_converters(converted):
    *_, mmproj, _ = converted
    reader = GGUFReader(mmproj)
    assert reader.get_field("general.architecture").contents() == "clip"
    assert reader.get_field("general.type").contents() == "mmproj"
    assert reader.get_field("general.file_type").contents() == 1          # MOSTLY_F16
    clip = {k: reader.get_field(k).contents() for k in reader.fields if k.startswith("clip.")}
    eps = clip.pop("clip.vision.attention.layer_norm_epsilon")
    assert eps == pytest.approx(1e-5)
    assert clip == {k: v for k, v in KEYS.items() if k != "clip.vision.attention.layer_norm_epsilon"}
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types == {PINNED_MISNAMED.get(n, n): q for n, q in pinned_tensors().items()}
    shapes = {t.name: [int(d) for d in t.shape] for t in reader.tensors}   # GGUF order: inner first
    assert shapes["v.patch_embd.weight"] == [3 * PATCH * PATCH, HIDDEN]      # the unfold's linear
    assert shapes["v.position_embd.weight"] == [HIDDEN, (IMAGE // PATCH) ** 2 + 1]
    assert shapes["mm.model.mlp.1.weight"] == [4 * HIDDEN, PROJ]
    assert shapes["mm.model.fc.weight"] == [PROJ, N_EMBD_TEXT]


@pytest.mark.parametrize("change, message", [
    ({"hidden_act": "silu"}, "runs GELU only"),
    ({"pixel_shuffle_ratio": 0.3}, "pixel_shuffle_ratio of 1/n"),
    ({"pixel_shuffle_ratio": None}, "pixel_shuffle_ratio of 1/n"),
    ({"rope_theta": 500000}, "not llama.cpp's fixed 10000"),
])
def test_vision_configs_llama_cpp_cannot_run_are_refused(converted, tmp_path, change, message):
    folder = converted[0] / "hf"
    cfg = json.loads((folder / "config.json").read_text())
    assert vision_refusal(cfg) is None
    cfg["vision_config"] = {**cfg["vision_config"], **change}
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("model.safetensors", "preprocessor_config.json"):
        (bad / name).symlink_to(folder / name)
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConvertError, match=message):
        open_mmproj_source(bad)
