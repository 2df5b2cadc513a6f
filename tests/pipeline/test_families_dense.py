"""StarCoder2, Command-R, GLM-4, EXAONE 3 and the text models of Mistral 3 and Idefics3 / SmolVLM:
a tiny checkpoint in each family's real tensor names converts, llama.cpp loads it, its logits are
the HF computation's (numpy), and the architecture's GGUF keys are the ones llama.cpp's converter
writes for it."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.quantize import quantize_model

from .test_convert_hf import _llama_logits
from .tiny_families_dense import FAMILIES, build_dense, dense_forward

_COMMON = {"block_count", "context_length", "embedding_length", "feed_forward_length",
           "attention.head_count", "attention.head_count_kv", "rope.freq_base"}
# The `<arch>.*` keys of the pinned llama.cpp converter (conversion/<family>.py) for these configs.
# EXAONE: its converter writes layer_norm_epsilon, a key llama.cpp's exaone loader never reads (it
# requires the RMS one and refuses the file); we write the key the loader reads.
KEYS = {
    "Starcoder2ForCausalLM": _COMMON | {"attention.layer_norm_epsilon"},
    "CohereForCausalLM": _COMMON | {"attention.layer_norm_epsilon", "logit_scale", "rope.scaling.type"},
    "Cohere2ForCausalLM": _COMMON | {"attention.layer_norm_epsilon", "logit_scale", "rope.scaling.type",
                                     "attention.sliding_window", "vocab_size", "rope.dimension_count"},
    "Glm4ForCausalLM": _COMMON | {"attention.layer_norm_rms_epsilon", "attention.key_length",
                                  "attention.value_length", "rope.dimension_count"},
    "Qwen2_5_VLForConditionalGeneration": _COMMON | {"attention.layer_norm_rms_epsilon",
                                                     "rope.dimension_sections"},
    "ExaoneForCausalLM": _COMMON | {"attention.layer_norm_rms_epsilon", "rope.dimension_count"},
    "Mistral3ForConditionalGeneration": _COMMON | {"attention.layer_norm_rms_epsilon", "vocab_size",
                                                   "attention.key_length", "attention.value_length",
                                                   "rope.dimension_count"},
    # conversion/llama.py for text_config's VLlama3ForCausalLM (text_model. stripped)
    "Idefics3ForConditionalGeneration": _COMMON | {"attention.layer_norm_rms_epsilon", "vocab_size",
                                                   "attention.key_length", "attention.value_length",
                                                   "rope.dimension_count"},
}
# ggml's CPU GELU reads a float16 table: ~1e-3 per activation (as for Gemma)
TOL = {"Starcoder2ForCausalLM": 2e-3}


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_dense_family_converts_and_matches_numpy(arch, tmp_path):
    weights, spec = build_dense(tmp_path / "hf", arch)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    reader = GGUFReader(out)
    g = spec["gguf"]
    assert reader.get_field("general.architecture").contents() == g
    keys = {k[len(g) + 1:] for k in reader.fields if k.startswith(g + ".")}
    assert keys == KEYS[arch]
    names = {t.name for t in reader.tensors}
    assert not any("vision" in n or "mm" in n for n in names)
    if arch == "CohereForCausalLM":
        assert reader.get_field("command-r.logit_scale").contents() == pytest.approx(0.0625)
        assert reader.get_field("command-r.context_length").contents() == 1024   # model_max_length
    if arch == "Glm4ForCausalLM":
        assert reader.get_field("glm4.rope.dimension_count").contents() == 16    # half of each head
    tokens, got = _llama_logits(out)
    want = dense_forward(weights, tokens, spec)
    assert np.abs(got - want).max() / np.abs(want).max() < TOL.get(arch, 1e-4)


def test_smolvlm2_text_config_without_head_count_reads_llamas_default():
    """SmolVLM2's text_config leaves num_attention_heads out; the pinned converter (and
    transformers' LlamaConfig) take 32."""
    from quantdesk.core.convert.registry import adapter_for
    from .tiny_families_dense import _config
    cfg = _config(dict(FAMILIES["Idefics3ForConditionalGeneration"],
                       arch="Idefics3ForConditionalGeneration"), 2)
    cfg["architectures"] = ["SmolVLMForConditionalGeneration"]
    assert adapter_for(cfg).n_head == 4
    del cfg["text_config"]["num_attention_heads"]
    assert adapter_for(cfg).n_head == 32
