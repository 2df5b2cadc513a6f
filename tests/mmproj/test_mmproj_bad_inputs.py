"""Bad inputs for the vision projector: each is one ConvertError line, refused before any file is
written; damaged safetensors get the converter's usual messages."""
from __future__ import annotations

import json

import pytest

from quantdesk.core.convert import ConvertError
from quantdesk.core.convert.mmproj import open_mmproj_source, vision_refusal
from quantdesk.core.quantize.writer import quantize_model
from quantdesk.core.runtime.mmproj import projector_refusal
from tests.mmproj.tiny_gemma3 import build_tiny_gemma3
from tests.pipeline.tiny_llama import build_tiny_other


def _edit_json(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _refused(folder, out_dir, message):
    """open_mmproj_source + the writer refuse with one line holding `message`; nothing written."""
    with pytest.raises(ConvertError) as info:
        quantize_model(open_mmproj_source(folder), out_dir / "mmproj.gguf", "F16")
    text = str(info.value)
    assert message in text and len(text.splitlines()) == 1, text
    assert projector_refusal(folder) == text     # the doors ask first and show the same line
    assert list(out_dir.iterdir()) == []


@pytest.fixture
def tiny(tmp_path):
    return build_tiny_gemma3(tmp_path / "tiny")


@pytest.fixture
def out_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    return out


def test_a_text_only_checkpoint_has_no_vision_tower(tmp_path, out_dir):
    folder = tmp_path / "text-only"
    build_tiny_other(folder, "Gemma3ForCausalLM")
    cfg = json.loads((folder / "config.json").read_text())
    assert "has no vision tower" in vision_refusal(cfg)
    _refused(folder, out_dir, "this checkpoint has no vision tower")


def test_a_multimodal_architecture_without_vision_config(tiny, out_dir):
    _edit_json(tiny.folder / "config.json", lambda c: c.pop("vision_config"))
    _refused(tiny.folder, out_dir, "config.json has no vision_config")


def test_an_unsupported_vision_family(tiny, out_dir):
    _edit_json(tiny.folder / "config.json",
               lambda c: c.update(architectures=["PaliGemmaForConditionalGeneration"]))
    assert vision_refusal(json.loads((tiny.folder / "config.json").read_text())).startswith(
        "no vision projector converter for PaliGemmaForConditionalGeneration (supported: ")
    _refused(tiny.folder, out_dir, "no vision projector converter for PaliGemmaForConditionalGeneration")


def test_a_llava_checkpoint_with_a_clip_tower(tiny, out_dir):
    # Llava's architecture name is taken for Pixtral-12B; llava-1.5's CLIP tower is not converted,
    # and the refusal comes from the config alone (Discover asks before any download)
    def llava(c):
        c["architectures"] = ["LlavaForConditionalGeneration"]
        c["vision_config"]["model_type"] = "clip_vision_model"
    _edit_json(tiny.folder / "config.json", llava)
    assert vision_refusal(json.loads((tiny.folder / "config.json").read_text())).startswith(
        "vision_config model_type is clip_vision_model: only the Pixtral vision tower")
    _refused(tiny.folder, out_dir, "vision_config model_type is clip_vision_model")


def test_missing_preprocessor_config(tiny, out_dir):
    (tiny.folder / "preprocessor_config.json").unlink()
    _refused(tiny.folder, out_dir, "no preprocessor_config.json (the image mean and std")


@pytest.mark.parametrize("key", ["image_mean", "image_std"])
def test_preprocessor_config_without_normalisation(tiny, out_dir, key):
    _edit_json(tiny.folder / "preprocessor_config.json", lambda c: c.pop(key))
    _refused(tiny.folder, out_dir, "preprocessor_config.json lacks image_mean / image_std")


def test_unreadable_preprocessor_config(tiny, out_dir):
    (tiny.folder / "preprocessor_config.json").write_text("{not json")
    _refused(tiny.folder, out_dir, "preprocessor_config.json cannot be read")


def test_vision_config_without_image_size(tiny, out_dir):
    _edit_json(tiny.folder / "config.json", lambda c: c["vision_config"].pop("image_size"))
    _refused(tiny.folder, out_dir, "vision_config lacks image_size")


def test_truncated_safetensors(tiny, out_dir):
    weights = tiny.folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 1000])
    _refused(tiny.folder, out_dir, "model.safetensors is truncated: tensor")


def test_safetensors_with_a_damaged_header(tiny, out_dir):
    weights = tiny.folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:20] = b"#" * 12
    weights.write_bytes(bytes(data))
    _refused(tiny.folder, out_dir, "model.safetensors is not a safetensors file (bad JSON header)")


def test_no_weights_at_all(tiny, out_dir):
    (tiny.folder / "model.safetensors").unlink()
    _refused(tiny.folder, out_dir, "no *.safetensors weights in")


def test_a_gguf_is_not_a_projector_source(tiny, tmp_path):
    gguf = tmp_path / "model-F16.gguf"
    quantize_model(tiny.folder, gguf, "F16")
    assert projector_refusal(gguf) == ("a vision projector is converted from a Hugging Face model "
                                       "folder, not a GGUF")
