"""gpt-oss: a tiny checkpoint with MXFP4 experts (as released) converts to llama.cpp's gpt-oss with
the expert blocks carried bit for bit into ggml's MXFP4 layout, llama.cpp loads it, its logits
are the HF computation's, and the keys are its converter's."""
from __future__ import annotations

import json

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.quantize import quantize_model

from .test_convert_hf import _llama_logits
from .tiny_gpt_oss import E, F, X, build_gpt_oss, gpt_oss_forward, hf_mxfp4

KEYS = {"block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
        "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "expert_count",
        "expert_used_count", "attention.key_length", "attention.value_length", "attention.sliding_window",
        "expert_feed_forward_length"}


@pytest.mark.parametrize("qtype", ["F32", "Q8_0"])
def test_gpt_oss_carries_mxfp4_experts(qtype, tmp_path):
    weights = build_gpt_oss(tmp_path / "hf")
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", qtype).path
    reader = GGUFReader(out)
    assert reader.get_field("general.architecture").contents() == "gpt-oss"
    assert {k[len("gpt-oss."):] for k in reader.fields if k.startswith("gpt-oss.")} == KEYS
    t = {x.name: x for x in reader.tensors}
    for name in ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"):   # kept MXFP4 whatever the type
        assert t[f"blk.0.{name}.weight"].tensor_type.name == "MXFP4"
    assert list(t["blk.0.ffn_gate_exps.weight"].shape) == [E, F, X]
    assert list(t["blk.1.ffn_up_exps.bias"].shape) == [F, X] and "blk.0.attn_sinks.weight" in t
    # the carried blocks are the checkpoint's values exactly (gguf-py's own MXFP4 dequantizer)
    from gguf.quants import dequantize
    up = dequantize(np.asarray(t["blk.1.ffn_up_exps.weight"].data), t["blk.1.ffn_up_exps.weight"].tensor_type)
    want = hf_mxfp4(weights["model.layers.1.mlp.experts.gate_up_proj_blocks"],
                    weights["model.layers.1.mlp.experts.gate_up_proj_scales"])[:, 1::2]
    np.testing.assert_array_equal(up.reshape(want.shape), want)
    # the planner, before converting, prices the experts as the MXFP4 they stay
    from quantdesk.core.planner import profile_from_hf_config, retype
    planned = retype(profile_from_hf_config(json.loads((tmp_path / "hf" / "config.json").read_text())), qtype)
    exps = {n: ty for n, _, ty in planned.tensors if n.endswith("_exps.weight")}
    assert len(exps) == 6 and set(exps.values()) == {39}   # GGML_TYPE_MXFP4
    if qtype == "F32":
        tokens, got = _llama_logits(out)
        # ggml's CPU product of an MXFP4 matrix rounds its input to Q8_0 first; the reference
        # does the same (without it the gap is ~2e-3; a swapped bias or lost sink gives > 8e-2)
        ref = gpt_oss_forward(weights, tokens, q8_inputs=True)
        assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4


def test_gpt_oss_bf16_release(tmp_path):
    """A dequantized re-release (experts BF16, input x output): transposed per expert, same model."""
    weights = build_gpt_oss(tmp_path / "hf", bf16_experts=True)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    t = {x.name: x for x in GGUFReader(out).tensors}
    assert t["blk.0.ffn_gate_exps.weight"].tensor_type.name == "F32"
    assert list(t["blk.0.ffn_gate_exps.weight"].shape) == [E, F, X]
    tokens, got = _llama_logits(out)
    ref = gpt_oss_forward(weights, tokens)   # F32 experts: no input rounding in llama.cpp
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4
