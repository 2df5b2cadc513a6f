"""Llama 4 text: the language model of a tiny Llama4ForConditionalGeneration converts to llama.cpp's
llama4 (fused experts transposed per expert while streaming, the vision side left out), llama.cpp
loads it, its logits are the HF computation's, and the keys are its converter's."""
from __future__ import annotations

import numpy as np
from gguf import GGUFReader

from quantdesk.core.quantize import quantize_model

from .test_convert_hf import _llama_logits
from .tiny_llama4 import D, E, F_EXP, X, build_llama4, llama4_forward

# LlamaModel's keys (common + vocab_size + rope.dimension_count) and Llama4Model's two
KEYS = {"block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
        "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "expert_count",
        "expert_used_count", "attention.key_length", "attention.value_length", "vocab_size",
        "rope.dimension_count", "interleave_moe_layer_step", "expert_feed_forward_length"}


def test_llama4_text_converts_and_matches_numpy(tmp_path):
    weights = build_llama4(tmp_path / "hf")
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    reader = GGUFReader(out)
    assert reader.get_field("general.architecture").contents() == "llama4"
    assert {k[len("llama4."):] for k in reader.fields if k.startswith("llama4.")} == KEYS
    assert reader.get_field("llama4.feed_forward_length").contents() == 256   # intermediate_size_mlp
    shapes = {t.name: list(t.shape) for t in reader.tensors}
    assert shapes["blk.1.ffn_gate_exps.weight"] == [E, F_EXP, X]
    assert shapes["blk.1.ffn_down_exps.weight"] == [F_EXP, E, X]
    assert "blk.0.ffn_gate.weight" in shapes and shapes["rope_freqs.weight"] == [D // 2]
    assert not any("vision" in n or "mm." in n for n in shapes)
    tokens, got = _llama_logits(out)
    want = llama4_forward(weights, tokens)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
