"""Qwen2-VL / Qwen2.5-VL mmproj: a tiny random checkpoint in the real HF layout is converted (text
half + mmproj), libmtmd encodes an image with both, and the embeddings equal a float64 numpy
forward of the HF vision tower + merger; the file's keys and tensors are the pinned converter's.

Tolerance: max |libmtmd - numpy| <= 3e-3 * max |numpy|. Measured 7e-4 (Qwen2.5) and 7e-4
(Qwen2-VL) with the F16 mmproj, and still 5e-4 with an F32 one: besides the F16 weights, ggml's
CPU path rounds to F16 in places (GELU table, attention) and its merger GELU is the tanh form where
HF's is erf. Real mistakes sit 100x above it: the test also checks that a reference with the 2-D
rope's rows and columns swapped (and, for Qwen2.5, without window attention) is rejected.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from tests.mmproj.checks import relative_error
from tests.mmproj.mtmd_probe import image_embeddings_in_child
from tests.mmproj.tiny_qwenvl import MEAN, PATCH, SPECS, STD, build_qwenvl, image, vision_forward
from tests.pipeline.tiny_families_dense import N_EMBD

TOL = 3e-3
ARCHS = ["Qwen2_5_VLForConditionalGeneration", "Qwen2VLForConditionalGeneration"]


@pytest.fixture(scope="module", params=ARCHS)
def converted(request, tmp_path_factory):
    from quantdesk.core.convert.mmproj import open_mmproj_source
    from quantdesk.core.quantize.writer import quantize_model
    arch = request.param
    folder = tmp_path_factory.mktemp(arch) / "hf"
    weights, spec = build_qwenvl(folder, arch)
    text = quantize_model(folder, folder.parent / "text.gguf", "F16").path
    mmproj = quantize_model(open_mmproj_source(folder), folder.parent / "mmproj.gguf", "F16").path
    return weights, spec, Path(text), Path(mmproj)


def test_libmtmd_embeddings_equal_numpy_reference(converted):
    weights, spec, text, mmproj = converted
    rgb = image()
    got = image_embeddings_in_child(text, mmproj, rgb)
    ref = vision_forward(weights, spec, rgb)
    assert got.shape == ref.shape == (45, N_EMBD)          # 9 x 5 merged tokens, no resize
    assert relative_error(got, ref) <= TOL
    # the comparison sees the parts most easily got wrong
    assert relative_error(got, vision_forward(weights, spec, rgb, rope_axes=(1, 0))) > 10 * TOL
    if spec["rms"]:
        no_windows = dict(spec, fullatt=list(range(spec["depth"])))
        assert relative_error(got, vision_forward(weights, no_windows, rgb)) > 10 * TOL


def _expected_keys(spec: dict) -> dict:
    """clip.* keys and values as the pinned conversion/qwenvl.py + base.py MmprojModel write them."""
    keys = {"clip.has_vision_encoder": True, "clip.vision.projection_dim": N_EMBD,
            "clip.vision.image_size": 560, "clip.vision.patch_size": PATCH,
            "clip.vision.embedding_length": spec["width"],
            # Qwen2-VL: the converter writes vision_config.hidden_size (the merger's output width)
            "clip.vision.feed_forward_length": spec["ff"] if spec["rms"] else N_EMBD,
            "clip.vision.block_count": spec["depth"], "clip.vision.attention.head_count": spec["heads"],
            "clip.vision.image_mean": MEAN, "clip.vision.image_std": STD,
            "clip.vision.attention.layer_norm_epsilon": 1e-6,
            "clip.projector_type": "qwen2.5vl_merger" if spec["rms"] else "qwen2vl_merger"}
    if spec["rms"]:
        keys.update({"clip.use_silu": True, "clip.vision.n_wa_pattern": spec["fullatt"][0] + 1})
    return keys


def _expected_tensors(spec: dict) -> dict[str, str]:
    t = {"v.patch_embd.weight": "F16", "v.patch_embd.weight.1": "F16", "v.post_ln.weight": "F32",
         "mm.0.weight": "F16", "mm.0.bias": "F32", "mm.2.weight": "F16", "mm.2.bias": "F32"}
    ffn = ("ffn_gate", "ffn_up", "ffn_down") if spec["rms"] else ("ffn_up", "ffn_down")
    for i in range(spec["depth"]):
        for n in ("attn_q", "attn_k", "attn_v", "attn_out") + ffn:
            t[f"v.blk.{i}.{n}.weight"], t[f"v.blk.{i}.{n}.bias"] = "F16", "F32"
        t[f"v.blk.{i}.ln1.weight"] = t[f"v.blk.{i}.ln2.weight"] = "F32"
        if not spec["rms"]:
            t[f"v.blk.{i}.ln1.bias"] = t[f"v.blk.{i}.ln2.bias"] = "F32"
    if not spec["rms"]:
        t["v.post_ln.bias"] = "F32"
    return t


def test_keys_and_tensors_are_the_pinned_converters(converted):
    _, spec, _, mmproj = converted
    reader = GGUFReader(mmproj)
    fields = {k: f.contents() for k, f in reader.fields.items() if k.startswith("clip.")}
    want = _expected_keys(spec)
    assert sorted(fields) == sorted(want)
    for k, v in want.items():
        assert fields[k] == (pytest.approx(v, rel=1e-6) if isinstance(v, (float, list)) else v), k
    assert reader.fields["general.type"].contents() == "mmproj"
    assert {t.name: t.tensor_type.name for t in reader.tensors} == _expected_tensors(spec)
    shapes = {t.name: [int(d) for d in t.shape] for t in reader.tensors}   # ggml order
    assert shapes["v.patch_embd.weight"] == shapes["v.patch_embd.weight.1"] == [PATCH, PATCH, 3, spec["width"]]
    assert shapes["v.blk.0.attn_q.weight"] == [spec["width"], spec["width"]]


_MROPE_CHILD = """
import sys, ctypes, numpy as np, llama_cpp
from llama_cpp import mtmd_cpp as mt
llama_cpp.llama_backend_init()
mp = llama_cpp.llama_model_default_params(); mp.n_gpu_layers = 0
lm = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), mp)
cp = mt.mtmd_context_params_default(); cp.use_gpu = False; cp.warmup = False
ctx = mt.mtmd_init_from_file(sys.argv[2].encode(), lm, cp)
rgb = np.zeros((140, 252, 3), np.uint8)
bm = mt.mtmd_bitmap_init(252, 140, rgb.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)))
chunks = mt.mtmd_input_chunks_init(); text = mt.mtmd_input_text(); p = mt.mtmd_default_marker()
text.text, text.text_len, text.add_special, text.parse_special = p, len(p), False, True
assert mt.mtmd_tokenize(ctx, chunks, ctypes.byref(text), (mt.mtmd_bitmap_p_ctypes * 1)(bm), 1) == 0
pos = [mt.mtmd_input_chunk_get_n_pos(mt.mtmd_input_chunks_get(chunks, i))
       for i in range(mt.mtmd_input_chunks_size(chunks))
       if mt.mtmd_input_chunk_get_type(mt.mtmd_input_chunks_get(chunks, i)) == mt.MTMD_INPUT_CHUNK_TYPE_IMAGE]
print(int(mt.mtmd_decode_use_mrope(ctx)), pos[0])
"""


def test_text_half_decodes_image_tokens_with_mrope(converted):
    # libmtmd takes M-RoPE from the language model (arch qwen2vl): an image then spans
    # max(rows, columns) = 9 positions, not its 45 tokens
    _, _, text, mmproj = converted
    proc = subprocess.run([sys.executable, "-c", _MROPE_CHILD, str(text), str(mmproj)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", "9"]


@pytest.mark.parametrize("change, message", [
    ({"fullatt_block_indexes": [1, 2]}, "not evenly spaced"),
    ({"fullatt_block_indexes": None}, "lacks fullatt_block_indexes"),
    ({"window_size": 64}, "112-pixel windows"),
    ({"temporal_patch_size": 1}, "temporal_patch_size is 1"),
    ({"spatial_merge_size": 4}, "spatial_merge_size is 4"),
])
def test_vision_configs_llamacpp_cannot_run_are_refused(tmp_path, change, message):
    import json

    from quantdesk.core.convert.errors import ConvertError
    from quantdesk.core.convert.mmproj import open_mmproj_source
    folder = tmp_path / "hf"
    build_qwenvl(folder, "Qwen2_5_VLForConditionalGeneration")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["vision_config"].update(change)
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConvertError, match=message) as err:
        open_mmproj_source(folder)
    assert "\n" not in str(err.value)


def test_q8_0_mmproj_types_follow_the_pinned_rules_and_encode(converted):
    # --outtype q8_0: weights Q8_0, the patch kernels F32 (tensor_force_quant), vectors F32
    from quantdesk.core.convert.mmproj import open_mmproj_source
    from quantdesk.core.quantize.writer import quantize_model
    weights, spec, text, mmproj = converted
    out = quantize_model(open_mmproj_source(mmproj.parent / "hf", "Q8_0"),
                         mmproj.parent / "mmproj-q8.gguf", "Q8_0").path
    want = {n: "F32" if n.startswith("v.patch_embd") else ("Q8_0" if t == "F16" else t)
            for n, t in _expected_tensors(spec).items()}
    assert {t.name: t.tensor_type.name for t in GGUFReader(out).tensors} == want
    rgb = image()
    got = image_embeddings_in_child(text, out, rgb)
    # 8-bit weights and (in ggml's Q8_0 matmul) 8-bit activations: measured 1.7e-2 on both
    assert relative_error(got, vision_forward(weights, spec, rgb)) <= 5e-2
