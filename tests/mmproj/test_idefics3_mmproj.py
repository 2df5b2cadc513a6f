"""Idefics3 / SmolVLM's vision projector as an mmproj GGUF: libmtmd's image embeddings equal a
float64 numpy forward of the HF vision tower + connector (pixel shuffle, then the linear
projection) tile by tile; keys and tensor types equal what the pinned convert_hf_to_gguf.py
(conversion/smolvlm.py SmolVLMModel + MmprojModel) writes.

The image is 64 x 64, the preprocessor's longest edge: libmtmd keeps it as it is, cuts it into
four 32 x 32 tiles (compared with the reference) and adds a resized overview last (Lanczos: its
shape is checked, not its values).

Tolerance: max |libmtmd - reference| / max |reference| < 3e-3, as for Gemma 3. Measured 8.7e-4
(F16 weights) and 6.2e-4 (F32: ggml's GELU reads a F16 table); Q8_0 2.0e-2 against its 3e-2.
The deliberate mistakes in the reference (`mistake` below) give 0.19 (mean and std in reversed
channel order) and 1.47 (pixel shuffle without its first transpose).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.convert.mmproj import open_mmproj_source, vision_refusal
from quantdesk.core.quantize.writer import quantize_model
from tests.mmproj.mtmd_probe import image_embeddings_in_child
from tests.mmproj.checks import assert_keys_and_types, gguf_types, relative_error
from tests.mmproj.tiny_idefics3 import IMAGE_MEAN, IMAGE_STD, build_tiny_idefics3, reference_tiles

TOLERANCE = 3e-3
ARCHS = ("Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration")


@pytest.fixture(scope="module", params=ARCHS)
def converted(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    tiny = build_tiny_idefics3(folder / "tiny-smolvlm", arch=request.param)
    text = quantize_model(tiny.folder, folder / "text-F16.gguf", "F16")
    mmproj = quantize_model(open_mmproj_source(tiny.folder), folder / "mmproj-F16.gguf", "F16")
    image = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    embeddings = image_embeddings_in_child(text.path, mmproj.path, image, all_chunks=True)
    return tiny, text.path, mmproj.path, image, embeddings


def _tiles(tiny, got):
    """The four tiles' rows, after checking that the overview follows them."""
    n = tiny.tokens_per_tile
    assert got.shape == (5 * n, tiny.n_embd_text)
    return got[:4 * n]


@pytest.mark.slow
def test_libmtmd_embeddings_equal_the_reference(converted):
    tiny, _, _, image, got = converted
    assert relative_error(_tiles(tiny, got), reference_tiles(tiny, image)) < TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["channels", "shuffle order"])
def test_the_comparison_notices_a_wrong_reference(converted, mistake):
    tiny, _, _, image, got = converted
    wrong = reference_tiles(tiny, image, break_=mistake)
    assert relative_error(_tiles(tiny, got), wrong) > 30 * TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("ftype", ["F32", "Q8_0"])
def test_other_file_types_encode_the_same_image(converted, ftype, tmp_path):
    tiny, text, _, image, _ = converted
    out = quantize_model(open_mmproj_source(tiny.folder, ftype), tmp_path / "mm.gguf", ftype)
    got = image_embeddings_in_child(text, out.path, image, all_chunks=True)
    bound = TOLERANCE if ftype == "F32" else 3e-2     # Q8_0 keeps about 8 bits
    assert relative_error(_tiles(tiny, got), reference_tiles(tiny, image)) < bound
    assert gguf_types(out.path) == expected_types(tiny, ftype)


# ---- what the pinned converter writes ----------------------------------------------------------

def expected_keys(tiny) -> dict:
    """SmolVLMModel.set_gguf_parameters + MmprojModel's (general.name aside)."""
    v = tiny.config["vision_config"]
    return {
        "general.architecture": "clip", "general.type": "mmproj", "general.file_type": 1,
        "general.quantization_version": 2,
        "clip.has_vision_encoder": True, "clip.vision.projection_dim": tiny.n_embd_text,
        "clip.vision.image_size": v["image_size"], "clip.vision.patch_size": v["patch_size"],
        "clip.vision.embedding_length": v["hidden_size"],
        "clip.vision.feed_forward_length": v["intermediate_size"],
        "clip.vision.block_count": v["num_hidden_layers"],
        "clip.vision.attention.head_count": v["num_attention_heads"],
        "clip.vision.image_mean": IMAGE_MEAN, "clip.vision.image_std": IMAGE_STD,
        "clip.projector_type": "idefics3",
        "clip.vision.attention.layer_norm_epsilon": v["layer_norm_eps"],
        "clip.vision.projector.scale_factor": tiny.config["scale_factor"], "clip.use_gelu": True,
        "clip.vision.preproc_image_size": tiny.preprocessor["size"]["longest_edge"],
    }


def expected_types(tiny, ftype: str) -> dict[str, str]:
    """prepare_tensors' rules: 1-D and norms F32; SmolVLMModel.tensor_force_quant: the
    embeddings (patch, position) F32 at every file type; the connector at the file type."""
    w = ftype
    types = {"v.patch_embd.weight": "F32", "v.patch_embd.bias": "F32",
             "v.position_embd.weight": "F32", "v.post_ln.weight": "F32", "v.post_ln.bias": "F32",
             "mm.model.fc.weight": w}
    for i in range(tiny.config["vision_config"]["num_hidden_layers"]):
        for n in ("attn_q", "attn_k", "attn_v", "attn_out", "ffn_up", "ffn_down"):
            types[f"v.blk.{i}.{n}.weight"], types[f"v.blk.{i}.{n}.bias"] = w, "F32"
        for n in ("ln1", "ln2"):
            types[f"v.blk.{i}.{n}.weight"] = types[f"v.blk.{i}.{n}.bias"] = "F32"
    return types


@pytest.mark.slow
def test_keys_and_tensor_types_match_the_pinned_converter(converted):
    tiny, _, mmproj, _, _ = converted
    assert_keys_and_types(mmproj, "tiny-smolvlm", expected_keys(tiny), expected_types(tiny, "F16"))


@pytest.mark.slow
def test_tensor_values_are_the_checkpoints(converted, tmp_path):
    tiny, text, _, _, _ = converted
    out = quantize_model(open_mmproj_source(tiny.folder, "F32"), tmp_path / "mm.gguf", "F32")
    data = {t.name: np.array(t.data) for t in GGUFReader(out.path).tensors}
    v = tiny.vision
    np.testing.assert_array_equal(data["mm.model.fc.weight"],
                                  v["model.connector.modality_projection.proj.weight"])
    np.testing.assert_array_equal(data["v.patch_embd.weight"],
                                  v["model.vision_model.embeddings.patch_embedding.weight"])
    np.testing.assert_array_equal(data["v.blk.1.ffn_down.weight"],
                                  v["model.vision_model.encoder.layers.1.mlp.fc2.weight"])
    # the text file holds the text model only
    names = [t.name for t in GGUFReader(text).tensors]
    assert "output.weight" in names and not any(n.startswith(("v.", "mm.")) for n in names)


class _Recorder:
    """Stands in for the GGUF writer: records each add_* call's arguments."""
    def __init__(self):
        self.calls = {}

    def __getattr__(self, name):
        return lambda *args: self.calls.__setitem__(name, args[0] if len(args) == 1 else args)


def test_defaults_the_pinned_converter_fills_in(tmp_path):
    """SmolVLM2's vision_config (smolvlm_vision) omits hidden_size, heads and intermediate_size;
    without layer_norm_eps, scale_factor and a longest edge the pinned converter's defaults are
    written (1e-5, 2, the tile size)."""
    from quantdesk.core.convert.mmproj.registry import vision_adapter_class
    tiny = build_tiny_idefics3(tmp_path / "t", arch="SmolVLMForConditionalGeneration")
    cfg = json.loads((tiny.folder / "config.json").read_text())
    for k in ("hidden_size", "num_attention_heads", "intermediate_size", "layer_norm_eps"):
        cfg["vision_config"].pop(k)
    cfg["vision_config"]["model_type"] = "smolvlm_vision"
    cfg.pop("scale_factor")
    pre = {k: v for k, v in tiny.preprocessor.items() if k != "size"}
    assert vision_refusal(cfg) is None
    gw = _Recorder()
    vision_adapter_class(cfg)(cfg, pre).add_hparams(gw)
    got = {k: gw.calls[k] for k in ("add_vision_embedding_length", "add_vision_head_count",
                                    "add_vision_feed_forward_length",
                                    "add_vision_attention_layernorm_eps",
                                    "add_vision_projector_scale_factor",
                                    "add_vision_preproc_image_size", "add_clip_projector_type")}
    assert got == {"add_vision_embedding_length": 1152, "add_vision_head_count": 16,
                   "add_vision_feed_forward_length": 3072,
                   "add_vision_attention_layernorm_eps": 1e-5,
                   "add_vision_projector_scale_factor": 2,
                   "add_vision_preproc_image_size": cfg["vision_config"]["image_size"],
                   "add_clip_projector_type": "idefics3"}
