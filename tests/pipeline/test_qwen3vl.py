"""Qwen3-VL's language model (dense `qwen3vl`, MoE `qwen3vlmoe`): a tiny checkpoint in the real
names and config shape converts, llama.cpp loads it, its logits for text tokens are the HF
computation's (numpy; deepstack inputs are zero for text, all M-RoPE positions equal), and the
architecture's GGUF keys are the ones the pinned converter (conversion/qwen3vl.py) writes."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.quantize import quantize_model

from .test_convert_hf import _llama_logits
from .tiny_families import family_forward
from .tiny_qwen3vl import DEEPSTACK, SECTIONS, build_qwen3vl

# TextModel + Qwen3VLTextModel / Qwen3VLMoeTextModel (+ Qwen2MoeModel's expert width)
_KEYS = {"block_count", "context_length", "embedding_length", "feed_forward_length",
         "attention.head_count", "attention.head_count_kv", "rope.freq_base",
         "attention.layer_norm_rms_epsilon", "attention.key_length", "attention.value_length",
         "rope.dimension_sections", "n_deepstack_layers"}
KEYS = {"qwen3vl": _KEYS,
        "qwen3vlmoe": _KEYS | {"expert_count", "expert_used_count", "expert_feed_forward_length"}}


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_qwen3vl_text_converts_and_matches_numpy(moe, tmp_path):
    weights, spec = build_qwen3vl(tmp_path / "hf", moe=moe)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    reader = GGUFReader(out)
    g = "qwen3vlmoe" if moe else "qwen3vl"
    assert reader.get_field("general.architecture").contents() == g
    keys = {k[len(g) + 1:] for k in reader.fields if k.startswith(g + ".")}
    assert keys == KEYS[g]
    assert reader.get_field(f"{g}.rope.dimension_sections").contents() == SECTIONS + [0]
    assert reader.get_field(f"{g}.n_deepstack_layers").contents() == len(DEEPSTACK)
    names = {t.name for t in reader.tensors}
    assert not any(n.startswith(("v.", "mm.")) for n in names)
    assert ("output.weight" in names) == (not spec["tied"])
    if moe:
        assert reader.get_field(f"{g}.expert_count").contents() == 4
        assert {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight",
                "blk.0.ffn_down_exps.weight", "blk.0.ffn_gate_inp.weight"} <= names
    tokens, got = _llama_logits(out)
    want = family_forward(weights, tokens, spec)
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel < 1e-4, rel


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_config_profile_is_the_converted_file(moe, tmp_path):
    """The planner's picture from config.json (text_config) is the file the converter writes."""
    import json

    from quantdesk.core.planner import estimate_memory, load_profile, profile_from_hf_config
    build_qwen3vl(tmp_path / "hf", moe=moe)
    written = load_profile(quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path)
    planned = profile_from_hf_config(json.loads((tmp_path / "hf" / "config.json").read_text()),
                                     source_type="F32")
    assert planned.architecture == written.architecture == ("qwen3vlmoe" if moe else "qwen3vl")
    assert planned.n_expert == written.n_expert == (4 if moe else 0)

    def matrices(profile):
        return {n: s for n, s, _ in profile.tensors if len([d for d in s if d > 1]) >= 2}
    assert matrices(planned) == matrices(written)
    assert estimate_memory(planned, n_ctx=512).kv_ram == estimate_memory(written, n_ctx=512).kv_ram


def test_transformers_v5_config_converts_the_same(tmp_path):
    """transformers v5 writes text_config's rope as rope_parameters (theta and M-RoPE sections
    together); the file's keys and logits do not change."""
    import json
    weights, spec = build_qwen3vl(tmp_path / "hf")
    path = tmp_path / "hf" / "config.json"
    cfg = json.loads(path.read_text())
    text = cfg["text_config"]
    text["rope_parameters"] = {**text.pop("rope_scaling"), "rope_theta": text.pop("rope_theta")}
    path.write_text(json.dumps(cfg))
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    reader = GGUFReader(out)
    assert {k[8:] for k in reader.fields if k.startswith("qwen3vl.")} == KEYS["qwen3vl"]
    assert reader.get_field("qwen3vl.rope.dimension_sections").contents() == SECTIONS + [0]
    assert reader.get_field("qwen3vl.rope.freq_base").contents() == 10000.0
    tokens, got = _llama_logits(out)
    assert np.abs(got - family_forward(weights, tokens, spec)).max() < 1e-4 * np.abs(got).max()
