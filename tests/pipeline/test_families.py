"""Llama-shaped families, dense and mixture-of-experts: a tiny checkpoint in each family's real
tensor names converts, llama.cpp loads it, and its logits are the HF computation's (numpy)."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.quantize import quantize_model

from .test_convert_hf import _llama_logits
from .tiny_families import FAMILIES, build_family, family_forward

GGUF_ARCH = {"MixtralForCausalLM": "llama", "Qwen2MoeForCausalLM": "qwen2moe",
             "Qwen3MoeForCausalLM": "qwen3moe", "OlmoeForCausalLM": "olmoe",
             "GraniteMoeForCausalLM": "granitemoe", "GraniteForCausalLM": "granite",
             "Olmo2ForCausalLM": "olmo2", "Olmo3ForCausalLM": "olmo2", "SmolLM3ForCausalLM": "smollm3",
             "ArceeForCausalLM": "arcee", "Ernie4_5ForCausalLM": "ernie4_5"}


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_family_converts_and_matches_numpy(arch, tmp_path):
    weights, spec = build_family(tmp_path / "hf", arch)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    reader = GGUFReader(out)
    gguf_arch = reader.get_field("general.architecture").contents()
    assert gguf_arch == GGUF_ARCH[arch]
    names = {t.name for t in reader.tensors}
    if spec.get("n_expert"):
        assert reader.get_field(f"{gguf_arch}.expert_count").contents() == spec["n_expert"]
        assert reader.get_field(f"{gguf_arch}.expert_used_count").contents() == spec["top_k"]
        exps = next(t for t in reader.tensors if t.name == "blk.0.ffn_gate_exps.weight")
        assert list(exps.shape) == [128, 128, spec["n_expert"]]   # ggml order: {n_embd, n_ff, n_expert}
        assert "blk.0.ffn_gate.weight" not in names
    tokens, got = _llama_logits(out)
    want = family_forward(weights, tokens, spec)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
