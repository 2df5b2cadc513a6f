"""Mistral Small 3.x and Pixtral-12B (HF form) mmproj files: libmtmd's image embeddings equal a
float64 numpy forward of the HF vision tower + projector, and the file's keys, tensor names and
types are the pinned llama.cpp converter's (conversion/llava.py LlavaVisionModel + base.py
MmprojModel).

Tolerance: relative 5e-3 (Frobenius norm of the difference over the reference's, and the largest
element difference over the reference's largest element). Measured: 1.1e-3 for this F16 file,
0.9e-3 for an F32 one, so most of it is ggml's CPU compute (its GELU is the tanh form read from an
F16 table where HF uses erf; F16 weights round their matmul inputs to F16). A wrong rope axis,
a dropped norm, a wrong [IMG_BREAK] row or the merger's features in the wrong order each put the
error at 0.19 or more (the rope one is checked in test_a_wrong_reference_is_caught).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from quantdesk.core.convert.errors import ConvertError
from quantdesk.core.convert.mmproj import open_mmproj_source
from tests.mmproj import tiny_pixtral as tp
from tests.mmproj.mtmd_probe import image_embeddings_in_child

TOL = 5e-3
# 24 x 32 pixels: whole 8-pixel (patch 4 x merge 2) cells and 12 merged tokens, inside clip.cpp's
# pixtral limits (8..1024 tokens), so its dyn_size preprocessor copies the image without resizing
IMAGE = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)


def _rel_errors(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    return (float(np.linalg.norm(got - ref) / np.linalg.norm(ref)),
            float(np.abs(got - ref).max() / np.abs(ref).max()))


def _write_mmproj(folder, out):
    from quantdesk.core.quantize.writer import quantize_model
    return quantize_model(open_mmproj_source(folder), out, "F16")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Both checkpoints converted; the Pixtral-12B one shares the Mistral 3 text GGUF (the same
    tiny language model: libmtmd only needs its n_embd and vocab)."""
    from quantdesk.core.quantize.writer import quantize_model
    root = tmp_path_factory.mktemp("pixtral")
    out = {}
    for kind, llava in (("mistral3", False), ("llava", True)):
        folder = root / kind
        weights, facts = tp.build_tiny_pixtral(folder, llava=llava)
        result = _write_mmproj(folder, root / f"mmproj-{kind}.gguf")
        out[kind] = dict(folder=folder, weights=weights, facts=facts, mmproj=root / f"mmproj-{kind}.gguf",
                         types=result.tensor_types)
    quantize_model(root / "mistral3", root / "text.gguf", "F16")
    out["text"] = root / "text.gguf"
    return out


@pytest.fixture(scope="module")
def embeddings(converted):
    return {kind: image_embeddings_in_child(converted["text"], converted[kind]["mmproj"], IMAGE)
            for kind in ("mistral3", "llava")}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mistral3", "llava"])
def test_libmtmd_embeddings_equal_the_reference(converted, embeddings, kind):
    c = converted[kind]
    ref = tp.pixtral_reference(c["weights"], c["facts"], IMAGE)
    # Mistral 3: 3 x 4 merged tokens + 2 [IMG_BREAK]; Pixtral-12B: 6 x 8 patches + 5 [IMG_BREAK]
    assert ref.shape == ((14, 128) if kind == "mistral3" else (53, 128))
    got = embeddings[kind]
    assert got.shape == ref.shape
    frob, peak = _rel_errors(got, ref)
    assert frob < TOL and peak < TOL, (frob, peak)


@pytest.mark.slow
def test_a_wrong_reference_is_caught(converted, embeddings, monkeypatch):
    """The comparison above can fail: the same reference with the rope's rows and columns
    exchanged (a patch at (r, c) turned as if at (c, r)) is far outside the tolerance."""
    real = tp._rope_angles

    def swapped(rows, cols, head_dim):
        return real(cols, rows, head_dim).reshape(cols, rows, head_dim).transpose(1, 0, 2).reshape(-1, head_dim)

    monkeypatch.setattr(tp, "_rope_angles", swapped)
    c = converted["mistral3"]
    frob, peak = _rel_errors(embeddings["mistral3"], tp.pixtral_reference(c["weights"], c["facts"], IMAGE))
    assert frob > 0.05 and peak > 0.05


def _keys_and_tensors(path):
    from gguf import GGUFReader
    r = GGUFReader(str(path))
    keys = {k: f.contents() for k, f in r.fields.items()
            if k.startswith("clip.") or k in ("general.architecture", "general.type", "general.file_type")}
    return keys, {t.name: (t.tensor_type.name, [int(d) for d in reversed(t.shape)]) for t in r.tensors}


def _expected(llava: bool):
    """What the pinned converter writes for these checkpoints at F16: MmprojModel's common keys,
    LlavaVisionModel's pixtral keys (layer_norm_eps 1e-5 as modeling_pixtral.py hard-codes it,
    use_silu from hidden_act, spatial_merge_size from the top-level config when present); 2-D
    weights F16 (patch_embd forced F16 for an F16 file), norms and 1-D tensors F32.

    v.token_embd.img_break: LlavaVisionModel means to write the [IMG_BREAK] row of the text
    embedding table, and clip.cpp refuses a pixtral mmproj without it; the pinned base.py's
    MmprojModel.filter_tensors drops every `language_model.` tensor before LlavaVisionModel sees
    it, so with HF tensor names the pinned converter leaves it out. We write it."""
    keys = {"general.architecture": "clip", "general.type": "mmproj", "general.file_type": 1,
            "clip.has_vision_encoder": True, "clip.vision.projection_dim": 128,
            "clip.vision.image_size": 64, "clip.vision.patch_size": 4,
            "clip.vision.embedding_length": 64, "clip.vision.feed_forward_length": 128,
            "clip.vision.block_count": 2, "clip.vision.attention.head_count": 4,
            "clip.vision.image_mean": tp.MEAN, "clip.vision.image_std": tp.STD,
            "clip.projector_type": "pixtral", "clip.vision.attention.layer_norm_epsilon": 1e-5,
            "clip.use_silu": True}
    if not llava:
        keys["clip.vision.spatial_merge_size"] = 2
    tensors = {"v.patch_embd.weight": ("F16", [64, 3, 4, 4]), "v.pre_ln.weight": ("F32", [64]),
               "v.token_embd.img_break": ("F32", [128])}
    for i in range(2):
        b = f"v.blk.{i}."
        tensors.update({b + n: ("F16", [64, 64]) for n in ("attn_q.weight", "attn_k.weight",
                                                           "attn_v.weight", "attn_out.weight")})
        tensors.update({b + "ln1.weight": ("F32", [64]), b + "ln2.weight": ("F32", [64]),
                        b + "ffn_gate.weight": ("F16", [128, 64]), b + "ffn_up.weight": ("F16", [128, 64]),
                        b + "ffn_down.weight": ("F16", [64, 128])})
    tensors.update({"mm.1.weight": ("F16", [128, 64]), "mm.2.weight": ("F16", [128, 128])})
    if llava:
        tensors.update({"mm.1.bias": ("F32", [128]), "mm.2.bias": ("F32", [128])})
    else:
        tensors.update({"mm.input_norm.weight": ("F32", [64]), "mm.patch_merger.weight": ("F16", [64, 256])})
    return keys, tensors


@pytest.mark.parametrize("kind", ["mistral3", "llava"])
def test_keys_and_tensors_are_the_pinned_converters(converted, kind):
    keys, tensors = _keys_and_tensors(converted[kind]["mmproj"])
    want_keys, want_tensors = _expected(kind == "llava")
    assert tensors == want_tensors
    assert set(keys) == set(want_keys)
    for k, v in want_keys.items():
        assert keys[k] == (pytest.approx(v, rel=1e-6) if isinstance(v, (float, list)) else v), k


def test_transformers_v5_names_give_the_same_tensors(converted, tmp_path):
    """model.vision_tower... / model.multi_modal_projector... / model.language_model.embed_tokens
    (transformers >= 4.52) convert to the same tensors as the un-wrapped names."""
    tp.build_tiny_pixtral(tmp_path, wrapped=True)
    from quantdesk.core.convert.safetensors import read_header
    assert "model.vision_tower.ln_pre.weight" in read_header(tmp_path / "model.safetensors")
    wrapped = open_mmproj_source(tmp_path)
    plain = open_mmproj_source(converted["mistral3"]["folder"])
    try:
        assert wrapped.tensor_types == plain.tensor_types
        by_name = {t.name: t for t in plain.tensors}
        for t in wrapped.tensors:
            np.testing.assert_array_equal(t.load(), by_name[t.name].load(), err_msg=t.name)
    finally:
        wrapped.close()
        plain.close()


def test_bad_checkpoints_get_one_line_messages(tmp_path):
    tp.build_tiny_pixtral(tmp_path, llava=True)
    # a tokenizer without [IMG_BREAK]: libmtmd could not lay out the image rows
    tok = json.loads((tmp_path / "tokenizer.json").read_text())
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != "[IMG_BREAK]"]
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ConvertError, match=r"no \[IMG_BREAK\] token") as exc:
        open_mmproj_source(tmp_path)
    assert "\n" not in str(exc.value)
    # LlavaForConditionalGeneration with a CLIP tower (llava-1.5): not this projector
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["vision_config"]["model_type"] = "clip_vision_model"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConvertError, match="only the Pixtral vision tower") as exc:
        open_mmproj_source(tmp_path)
    assert "\n" not in str(exc.value)
