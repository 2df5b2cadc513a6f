"""Gemma 3's vision projector as an mmproj GGUF: libmtmd's image embeddings equal a float64 numpy
forward of the HF vision tower + projector, for both checkpoint layouts; keys and tensor types
equal what the pinned convert_hf_to_gguf.py (Gemma3VisionModel + MmprojModel) writes.

Tolerance: max |libmtmd - reference| / max |reference| < 3e-3. Measured 5e-4 (F16 weights) and
4e-4 (F32 weights: llama.cpp keeps mm.input_projection F16 and casts activations to F16 for it,
and ggml's GELU reads a F16 table); each deliberate mistake in the reference (`breaks` below)
gives 0.37 or more.
"""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.convert import ConvertError
from quantdesk.core.convert.mmproj import open_mmproj_source
from quantdesk.core.quantize.writer import quantize_model
from tests.mmproj.checks import assert_keys_and_types, gguf_types, relative_error
from tests.mmproj.mtmd_probe import image_embeddings_in_child
from tests.mmproj.tiny_gemma3 import IMAGE_MEAN, IMAGE_STD, build_tiny_gemma3, reference_embeddings

TOLERANCE = 3e-3
# (layout, tokens per image): the released names with llama.cpp's default pooling factor 4, and
# transformers >= 4.52's model.-wrapped names with factor 2 (then clip.vision.projector
# .scale_factor is written, as the pinned converter does for its tinygemma3 test model)
LAYOUTS = {"released": (False, 4), "wrapped": (True, 16)}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def converted(request, tmp_path_factory):
    wrapped, tokens = LAYOUTS[request.param]
    folder = tmp_path_factory.mktemp(f"gemma3-{request.param}")
    tiny = build_tiny_gemma3(folder / "tiny-gemma3", wrapped=wrapped, tokens_per_image=tokens)
    text = quantize_model(tiny.folder, folder / "text-F16.gguf", "F16")
    mmproj = quantize_model(open_mmproj_source(tiny.folder), folder / "mmproj-F16.gguf", "F16")
    image = np.random.default_rng(5).integers(0, 256, (56, 56, 3), dtype=np.uint8)
    embeddings = image_embeddings_in_child(text.path, mmproj.path, image)
    return tiny, text.path, mmproj.path, image, embeddings


@pytest.mark.slow
def test_libmtmd_embeddings_equal_the_reference(converted):
    tiny, _, _, image, got = converted
    ref = reference_embeddings(tiny, image)
    assert got.shape == (tiny.config["mm_tokens_per_image"], tiny.n_embd_text)
    assert relative_error(got, ref) < TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["channels", "pool order", "norm weight"])
def test_the_comparison_notices_a_wrong_reference(converted, mistake):
    tiny, _, _, image, got = converted
    assert relative_error(got, reference_embeddings(tiny, image, break_=mistake)) > 30 * TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("ftype", ["F32", "BF16", "Q8_0"])
def test_other_file_types_encode_the_same_image(converted, ftype, tmp_path):
    tiny, text, _, image, _ = converted
    out = quantize_model(open_mmproj_source(tiny.folder, ftype), tmp_path / "mm.gguf", ftype)
    got = image_embeddings_in_child(text, out.path, image)
    # BF16 keeps 8 bits of mantissa, Q8_0 about 8: looser than F16's 11
    bound = TOLERANCE if ftype == "F32" else 3e-2
    assert relative_error(got, reference_embeddings(tiny, image)) < bound
    assert gguf_types(out.path) == expected_types(tiny, ftype)


# ---- what the pinned converter writes ----------------------------------------------------------

def expected_keys(tiny) -> dict:
    """Gemma3VisionModel.set_gguf_parameters + MmprojModel's (general.name aside: the pinned
    converter derives it from the model card, we from config.json / the folder name)."""
    v = tiny.config["vision_config"]
    keys = {
        "general.architecture": "clip", "general.type": "mmproj", "general.file_type": 1,
        "general.quantization_version": 2,
        "clip.has_vision_encoder": True, "clip.vision.projection_dim": tiny.n_embd_text,
        "clip.vision.image_size": v["image_size"], "clip.vision.patch_size": v["patch_size"],
        "clip.vision.embedding_length": v["hidden_size"],
        "clip.vision.feed_forward_length": v["intermediate_size"],
        "clip.vision.block_count": v["num_hidden_layers"],
        "clip.vision.attention.head_count": v["num_attention_heads"],
        "clip.vision.image_mean": IMAGE_MEAN, "clip.vision.image_std": IMAGE_STD,
        "clip.projector_type": "gemma3",
        "clip.vision.attention.layer_norm_epsilon": v["layer_norm_eps"], "clip.use_gelu": True,
    }
    factor = (v["image_size"] // v["patch_size"]) // int(tiny.config["mm_tokens_per_image"] ** 0.5)
    if factor != 4:
        keys["clip.vision.projector.scale_factor"] = factor
    return keys


def expected_types(tiny, ftype: str) -> dict[str, str]:
    """prepare_tensors' rules: 1-D and norms F32; Gemma3VisionModel.tensor_force_quant: the
    projection F16 and the embeddings (patch, position) F32 at every file type."""
    w = ftype
    types = {"v.patch_embd.weight": "F32", "v.patch_embd.bias": "F32",
             "v.position_embd.weight": "F32", "v.post_ln.weight": "F32", "v.post_ln.bias": "F32",
             "mm.input_projection.weight": "F16", "mm.soft_emb_norm.weight": "F32"}
    for i in range(tiny.config["vision_config"]["num_hidden_layers"]):
        for n in ("attn_q", "attn_k", "attn_v", "attn_out", "ffn_up", "ffn_down"):
            types[f"v.blk.{i}.{n}.weight"], types[f"v.blk.{i}.{n}.bias"] = w, "F32"
        for n in ("ln1", "ln2"):
            types[f"v.blk.{i}.{n}.weight"] = types[f"v.blk.{i}.{n}.bias"] = "F32"
    return types


@pytest.mark.slow
def test_keys_and_tensor_types_match_the_pinned_converter(converted):
    tiny, _, mmproj, _, _ = converted
    assert_keys_and_types(mmproj, "tiny-gemma3", expected_keys(tiny), expected_types(tiny, "F16"))


@pytest.mark.slow
def test_tensor_values_are_the_checkpoints(converted, tmp_path):
    tiny, _, _, _, _ = converted
    out = quantize_model(open_mmproj_source(tiny.folder, "F32"), tmp_path / "mm.gguf", "F32")
    data = {t.name: np.array(t.data) for t in GGUFReader(out.path).tensors}
    v = tiny.vision
    pre = "vision_tower.vision_model."
    # Gemma's RMS norm weight is stored as w and applied as (1 + w); llama.cpp multiplies by w
    np.testing.assert_array_equal(data["mm.soft_emb_norm.weight"],
                                  v["multi_modal_projector.mm_soft_emb_norm.weight"] + 1)
    np.testing.assert_array_equal(data["v.patch_embd.weight"],
                                  v[pre + "embeddings.patch_embedding.weight"])
    np.testing.assert_array_equal(data["v.blk.1.ffn_up.weight"], v[pre + "encoder.layers.1.mlp.fc1.weight"])
    np.testing.assert_array_equal(data["v.post_ln.bias"], v[pre + "post_layernorm.bias"])
    np.testing.assert_array_equal(
        data["mm.input_projection.weight"],
        v["multi_modal_projector.mm_input_projection_weight"].astype(np.float16))


@pytest.mark.slow
def test_text_half_of_both_layouts_converts_to_the_same_model(tmp_path):
    """transformers >= 4.52's model.language_model.* names give the same text GGUF as the
    released language_model.model.* names (vision tensors left out of both)."""
    files = {}
    for wrapped in (False, True):
        tiny = build_tiny_gemma3(tmp_path / f"g{int(wrapped)}", wrapped=wrapped)
        files[wrapped] = quantize_model(tiny.folder, tmp_path / f"t{int(wrapped)}.gguf", "F16").path
    a, b = (GGUFReader(files[w]).tensors for w in (False, True))
    assert [t.name for t in a] == [t.name for t in b]
    assert not any(t.name.startswith(("v.", "mm.")) for t in a)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.array(x.data), np.array(y.data), err_msg=x.name)


def test_bf16_checkpoint_is_read(tmp_path):
    tiny = build_tiny_gemma3(tmp_path / "bf", dtype="BF16")
    source = open_mmproj_source(tiny.folder)
    try:
        assert len(source.tensors) == len(expected_types(tiny, "F16"))
    finally:
        source.close()


def test_unknown_file_type_is_refused(tmp_path):
    tiny = build_tiny_gemma3(tmp_path / "t")
    with pytest.raises(ConvertError, match="an mmproj is written as F16, F32, BF16, Q8_0, not Q4_K"):
        open_mmproj_source(tiny.folder, "Q4_K")
