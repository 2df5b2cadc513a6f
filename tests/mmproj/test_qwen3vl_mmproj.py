"""Qwen3-VL mmproj (`qwen3vl_merger`): a tiny random checkpoint in the real HF layout is converted
(text half + mmproj), libmtmd encodes an image with both, and the embeddings -- per image token the
merger's output then each deepstack merger's, as libmtmd hands them to the language model -- equal
a float64 numpy forward of the HF vision tower; the file's keys and tensors are the pinned
converter's (conversion/qwen3vl.py).

Tolerance: max |libmtmd - numpy| <= 3e-3 * max |numpy|, as for Qwen2-VL (F16 weights, ggml's F16
rounding on the CPU path, its tanh GELU in the mergers where HF's is erf). The test also checks
that wrong references (rope rows and columns swapped, the position grid resized without aligned
corners, deepstack features from other layers) are rejected.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from tests.mmproj.mtmd_probe import image_embeddings_in_child
from tests.mmproj.tiny_qwen3vl import MEAN, STD, build, image, vision_forward
from tests.pipeline.tiny_qwen3vl import DEEPSTACK, GRID, N_EMBD, PATCH, VISION

TOL = 3e-3


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from quantdesk.core.convert.mmproj import open_mmproj_source
    from quantdesk.core.quantize.writer import quantize_model
    folder = tmp_path_factory.mktemp("qwen3vl") / "hf"
    weights = build(folder)
    text = quantize_model(folder, folder.parent / "text.gguf", "F16").path
    mmproj = quantize_model(open_mmproj_source(folder), folder.parent / "mmproj.gguf", "F16").path
    return weights, Path(text), Path(mmproj)


def _rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def test_libmtmd_embeddings_equal_numpy_reference(converted):
    weights, text, mmproj = converted
    rgb = image()
    got = image_embeddings_in_child(text, mmproj, rgb)
    ref = vision_forward(weights, rgb)
    assert got.shape == ref.shape == (45, N_EMBD * (1 + len(DEEPSTACK)))   # 9 x 5 merged tokens
    assert _rel_err(got, ref) <= TOL
    for wrong in (dict(rope_axes=(1, 0)), dict(align_corners=False), dict(deepstack=[0, 1, 2])):
        assert _rel_err(got, vision_forward(weights, rgb, **wrong)) > 10 * TOL, wrong


def test_keys_and_tensors_are_the_pinned_converters(converted):
    _, _, mmproj = converted
    reader = GGUFReader(mmproj)
    fields = {k: f.contents() for k, f in reader.fields.items() if k.startswith("clip.")}
    want = {"clip.has_vision_encoder": True, "clip.vision.projection_dim": N_EMBD,
            "clip.vision.image_size": GRID * PATCH, "clip.vision.patch_size": PATCH,
            "clip.vision.embedding_length": VISION["width"],
            "clip.vision.feed_forward_length": VISION["ff"], "clip.vision.block_count": VISION["depth"],
            "clip.vision.attention.head_count": VISION["heads"], "clip.vision.image_mean": MEAN,
            "clip.vision.image_std": STD, "clip.projector_type": "qwen3vl_merger", "clip.use_gelu": True,
            "clip.vision.spatial_merge_size": 2, "clip.vision.attention.layer_norm_epsilon": 1e-5,
            "clip.vision.is_deepstack_layers": [i in DEEPSTACK for i in range(VISION["depth"])]}
    assert sorted(fields) == sorted(want)
    for k, v in want.items():
        assert fields[k] == (pytest.approx(v, rel=1e-6) if isinstance(v, (float, list)) else v), k
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    t = {"v.patch_embd.weight": "F16", "v.patch_embd.weight.1": "F16", "v.patch_embd.bias": "F32",
         "v.position_embd.weight": "F32", "v.post_ln.weight": "F32", "v.post_ln.bias": "F32",
         "mm.0.weight": "F16", "mm.0.bias": "F32", "mm.2.weight": "F16", "mm.2.bias": "F32"}
    for i in range(VISION["depth"]):
        for n in ("attn_qkv", "attn_out", "ffn_up", "ffn_down"):
            t[f"v.blk.{i}.{n}.weight"], t[f"v.blk.{i}.{n}.bias"] = "F16", "F32"
        for n in ("ln1", "ln2"):
            t[f"v.blk.{i}.{n}.weight"] = t[f"v.blk.{i}.{n}.bias"] = "F32"
    for i in DEEPSTACK:
        t[f"v.deepstack.{i}.norm.weight"] = t[f"v.deepstack.{i}.norm.bias"] = "F32"
        for n in ("fc1", "fc2"):
            t[f"v.deepstack.{i}.{n}.weight"], t[f"v.deepstack.{i}.{n}.bias"] = "F16", "F32"
    assert types == t


@pytest.mark.parametrize("change, message", [
    ({"temporal_patch_size": 1}, "temporal_patch_size is 1"),
    ({"spatial_merge_size": 4}, "spatial_merge_size is 4"),
    ({"deepstack_visual_indexes": [1, 9]}, "not layers of the 4-layer tower"),
])
def test_vision_configs_llamacpp_cannot_run_are_refused(change, message):
    from quantdesk.core.convert.mmproj import vision_refusal
    from tests.pipeline.tiny_qwen3vl import _config
    cfg = _config(False, 4, True)
    assert vision_refusal(cfg) is None
    cfg["vision_config"].update(change)
    reason = vision_refusal(cfg)
    assert message in reason and "\n" not in reason
