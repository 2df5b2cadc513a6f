"""GLM-4.5 (glm4moe): a tiny checkpoint converts (MTP layer left out), llama.cpp loads it, its
logits are the HF computation's, and the keys are its converter's."""
from __future__ import annotations

import numpy as np
from gguf import GGUFReader

from quantdesk.core.quantize import quantize_model

from .test_convert_hf import _llama_logits
from .tiny_glm4moe import build_glm4moe, glm4moe_forward

KEYS = {"block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
        "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "expert_count",
        "expert_used_count", "expert_group_count", "expert_group_used_count", "attention.key_length", "attention.value_length",
        "rope.dimension_count", "expert_feed_forward_length", "expert_shared_count",
        "leading_dense_block_count", "expert_gating_func", "expert_weights_scale", "expert_weights_norm"}


def test_glm4moe_converts_and_matches_numpy(tmp_path):
    weights = build_glm4moe(tmp_path / "hf")
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    reader = GGUFReader(out)
    assert reader.get_field("general.architecture").contents() == "glm4moe"
    assert {k[len("glm4moe."):] for k in reader.fields if k.startswith("glm4moe.")} == KEYS
    assert reader.get_field("glm4moe.rope.dimension_count").contents() == 16
    names = {t.name for t in reader.tensors}
    assert {"blk.1.exp_probs_b.bias", "blk.1.ffn_up_shexp.weight", "blk.0.ffn_gate.weight"} <= names
    assert not any(n.startswith("blk.3.") for n in names)
    tokens, got = _llama_logits(out)
    want = glm4moe_forward(weights, tokens)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
