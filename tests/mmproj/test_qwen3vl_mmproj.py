"""Qwen3-VL mmproj (`qwen3vl_merger`): a tiny random checkpoint in the real HF layout is converted
(text half + mmproj), libmtmd encodes an image with both, and the embeddings -- per image token the
merger's output then each deepstack merger's, as libmtmd hands them to the language model -- equal
a float64 numpy forward of the HF vision tower; the file's keys and tensors are the pinned
converter's (conversion/qwen3vl.py). And the text GGUF decodes those embeddings as HF's text model
does (deepstack added after the first layers, image positions turned by interleaved M-RoPE).

Tolerance: max |libmtmd - numpy| <= 3e-3 * max |numpy| (measured 4.4e-4), as for Qwen2-VL (F16 weights, ggml's F16
rounding on the CPU path, its tanh GELU in the mergers where HF's is erf). The test also checks
that wrong references (rope rows and columns swapped, the position grid resized without aligned
corners, deepstack features from other layers) are rejected.
"""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from tests.mmproj.checks import relative_error
from tests.mmproj.mtmd_probe import image_embeddings_in_child
from tests.mmproj.tiny_qwen3vl import MEAN, STD, build, image, vision_forward
from tests.pipeline.tiny_families import family_forward
from tests.pipeline.tiny_qwen3vl import DEEPSTACK, GRID, HEAD_DIM, N_EMBD, PATCH, SECTIONS, VISION

TOL = 3e-3


@pytest.fixture(scope="module", params=[False, True], ids=["dense", "moe"])
def converted(request, tmp_path_factory):
    from quantdesk.core.convert.mmproj import open_mmproj_source
    from quantdesk.core.quantize.writer import quantize_model
    folder = tmp_path_factory.mktemp("qwen3vl") / "hf"
    weights, text_weights, spec = build(folder, moe=request.param)
    text = quantize_model(folder, folder.parent / "text.gguf", "F16").path
    mmproj = quantize_model(open_mmproj_source(folder), folder.parent / "mmproj.gguf", "F16").path
    return weights, Path(text), Path(mmproj), (folder, text_weights, spec)


def test_libmtmd_embeddings_equal_numpy_reference(converted):
    weights, text, mmproj, _ = converted
    rgb = image()
    got = image_embeddings_in_child(text, mmproj, rgb)
    ref = vision_forward(weights, rgb)
    assert got.shape == ref.shape == (45, N_EMBD * (1 + len(DEEPSTACK)))   # 9 x 5 merged tokens
    assert relative_error(got, ref) <= TOL
    for wrong in (dict(rope_axes=(1, 0)), dict(align_corners=False), dict(deepstack=[0, 1, 2])):
        assert relative_error(got, vision_forward(weights, rgb, **wrong)) > 10 * TOL, wrong


def test_keys_and_tensors_are_the_pinned_converters(converted):
    _, _, mmproj, _ = converted
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


_DECODE_CHILD = """
import sys, ctypes, io, numpy as np, llama_cpp
embd, pos = (np.ascontiguousarray(a) for a in np.load(io.BytesIO(sys.stdin.buffer.read())).values())
llama_cpp.llama_backend_init()
mp = llama_cpp.llama_model_default_params(); mp.n_gpu_layers = 0
lm = llama_cpp.llama_model_load_from_file(sys.argv[1].encode(), mp)
cp = llama_cpp.llama_context_default_params()
cp.n_ctx = cp.n_batch = cp.n_ubatch = 64; cp.n_threads = cp.n_threads_batch = 2
cp.type_k = cp.type_v = 0   # F32 KV cache, no flash attention (its CPU kernel rounds Q to F16)
cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
lctx = llama_cpp.llama_init_from_model(lm, cp)
n, width = embd.shape
assert width == llama_cpp.llama_model_n_embd_inp(lm), (width, llama_cpp.llama_model_n_embd_inp(lm))
embd_c = (ctypes.c_float * embd.size)(*embd.astype(np.float32).reshape(-1).tolist())
pos_c = (llama_cpp.llama_pos * pos.size)(*pos.astype(int).tolist())   # M-RoPE: t, y, x, unused
seq0 = (llama_cpp.llama_seq_id * 1)(0)
seq_c = (ctypes.POINTER(llama_cpp.llama_seq_id) * n)(*[ctypes.cast(seq0, ctypes.POINTER(llama_cpp.llama_seq_id))] * n)
n_seq_c, logits_c = (ctypes.c_int32 * n)(*[1] * n), (ctypes.c_int8 * n)(*[1] * n)
batch = llama_cpp.llama_batch(n_tokens=n, token=None, embd=ctypes.cast(embd_c, ctypes.POINTER(ctypes.c_float)),
                              pos=ctypes.cast(pos_c, ctypes.POINTER(llama_cpp.llama_pos)), n_seq_id=n_seq_c,
                              seq_id=seq_c, logits=logits_c)
assert llama_cpp.llama_decode(lctx, batch) == 0
n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(lm))
out = np.stack([np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(lctx, j), shape=(n_vocab,)).copy()
                for j in range(n)])
buf = io.BytesIO(); np.save(buf, out); sys.stdout.buffer.write(buf.getvalue())
"""


def test_text_model_adds_deepstack_and_turns_image_tokens_by_interleaved_mrope(converted):
    """The text GGUF decodes libmtmd's image embeddings as HF's Qwen3-VL text model does: the
    first width is the input, deepstack part k is added after text layer k, and the image tokens'
    (t, row, column) positions turn the head dims interleaved by the config's mrope_section.
    Holds the keys n_deepstack_layers and rope.dimension_sections to their meaning (text-only
    input cannot: its deepstack inputs are zero and its three positions equal)."""
    from quantdesk.core.quantize.writer import quantize_model
    _, text, mmproj, (folder, text_w, spec) = converted
    embd = image_embeddings_in_child(text, mmproj, image())            # (45, 4 * N_EMBD)
    # decoded with an F32 text model: ggml's F16 matmuls round the activations to F16 (1e-3)
    text = quantize_model(folder, folder.parent / "text-f32.gguf", "F32").path
    rows, cols = 5, 9
    yx = np.array([(r, c) for r in range(rows) for c in range(cols)])
    pos = np.stack([np.zeros(len(yx), int), yx[:, 0], yx[:, 1], np.zeros(len(yx), int)])
    buf = io.BytesIO()
    np.savez(buf, embd=embd, pos=pos.reshape(-1))
    proc = subprocess.run([sys.executable, "-c", _DECODE_CHILD, str(text)], input=buf.getvalue(),
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    got = np.load(io.BytesIO(proc.stdout))

    inv = 10000.0 ** (-np.arange(0, HEAD_DIM, 2) / HEAD_DIM)

    def want(sections, n_deepstack):
        j = np.arange(HEAD_DIM // 2)   # HF's apply_interleaved_mrope: which position turns pair j
        axis = np.where((j % 3 == 1) & (j < 3 * sections[1]), 1,
                        np.where((j % 3 == 2) & (j < 3 * sections[2]), 2, 0))
        angles = pos[axis, :].T * inv                                 # (n, HEAD_DIM / 2)

        def deepstack(i, x):
            return x + embd[:, N_EMBD * (i + 1):N_EMBD * (i + 2)] if i < n_deepstack else x
        return family_forward(text_w, [], spec, embeds=embd[:, :N_EMBD], angles=angles,
                              after_layer=deepstack)

    ref = want(SECTIONS, len(DEEPSTACK))
    assert relative_error(got, ref) <= 1e-4                                   # measured 2e-7
    assert relative_error(got, want(SECTIONS, 0)) > 100 * 1e-4                # deepstack left out: 0.78
    assert relative_error(got, want([16, 0, 0], len(DEEPSTACK))) > 100 * 1e-4  # positions as text: 0.066
