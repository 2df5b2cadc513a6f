"""The memory model against hand-computed examples (a GGUF this test builds, with known tensor
shapes and types) and against files llama.cpp's own quantizer wrote."""
from __future__ import annotations

import dataclasses

import pytest

from quantdesk.core.gguf import HeaderError, HeaderIncomplete, parse_header, read_header
from quantdesk.core.planner import (PlannerError, compute_reserved, estimate_memory, load_profile,
                                    profile_from_header, profile_from_hf_config, retype)
from quantdesk.core.planner.memory import kv_cells

# tiny_model by hand: Q8_0 = 34 bytes per 32 weights, F16 = 2 bytes, F32 = 4 bytes.
EMBD = 256 * 1024 // 32 * 34                       # token_embd Q8_0            278528
OUTPUT = EMBD + 256 * 4                            # output Q8_0 + output_norm  279552
LAYER = (2 * 256 * 4                               # attn_norm, ffn_norm F32
         + 2 * 256 * 256 * 2                       # attn_q, attn_output F16
         + 2 * (256 * 128 // 32 * 34)              # attn_k, attn_v Q8_0 (2 KV heads x 64)
         + 3 * (256 * 768 // 32 * 34))             # ffn_gate, ffn_up, ffn_down Q8_0
KV_LAYER_1K = 1024 * (2 * 64 + 2 * 64) * 2         # cells x (K + V widths) x f16


def test_hand_computed_groups(tiny_model):
    p = load_profile(tiny_model)
    layers, embd, out, other = p.group_bytes()
    assert LAYER == 960512
    assert layers == [LAYER] * 3 and embd == EMBD and out == OUTPUT and other == 0
    assert (p.n_layer, p.n_embd, p.n_vocab, p.n_head_kv, p.head_dim_k) == (3, 256, 1024, (2,) * 3, 64)
    assert p.file_type == "Q8_0"


def test_cpu_only_estimate(tiny_model):
    e = estimate_memory(load_profile(tiny_model), n_ctx=1024)
    assert e.weights_ram == EMBD + 3 * LAYER + OUTPUT and e.weights_vram == 0
    assert e.kv_ram == 3 * KV_LAYER_1K and e.kv_vram == 0 and e.vram_bytes == 0
    assert e.ram_bytes == e.weights_ram + e.kv_ram + e.compute_ram + e.overhead_ram


def test_partial_offload_counts_layers_from_the_end(tiny_model):
    e = estimate_memory(load_profile(tiny_model), n_ctx=1024, n_gpu_layers=2)
    assert e.weights_vram == 2 * LAYER and e.kv_vram == 2 * KV_LAYER_1K
    assert e.weights_ram == EMBD + LAYER + OUTPUT and e.kv_ram == KV_LAYER_1K


def test_full_offload_moves_output_but_never_token_embd(tiny_model):
    prof = load_profile(tiny_model)
    e = estimate_memory(prof, n_ctx=1024, n_gpu_layers=4)
    assert e.gpu_layers == 4 and e.weights_vram == 3 * LAYER + OUTPUT and e.weights_ram == EMBD
    assert estimate_memory(prof, n_ctx=1024, n_gpu_layers=99).gpu_layers == 4


def test_tied_embeddings(tiny_tied_model):
    prof = load_profile(tiny_tied_model)
    cpu = estimate_memory(prof, n_ctx=512)
    assert cpu.weights_ram == EMBD + 3 * LAYER + 256 * 4     # token_embd read once, in place
    gpu = estimate_memory(prof, n_ctx=512, n_gpu_layers=4)
    assert gpu.weights_vram == 3 * LAYER + EMBD + 256 * 4    # llama.cpp copies it to the GPU
    assert gpu.weights_ram == EMBD


def test_kv_cache_types_and_context(tiny_model):
    prof = load_profile(tiny_model)
    q8 = estimate_memory(prof, n_ctx=4096, type_k="Q8_0", type_v="Q8_0")
    assert q8.kv_ram == 3 * 4096 * (128 + 128) * 34 // 32
    assert estimate_memory(prof, n_ctx=4096).kv_ram == 4 * 3 * KV_LAYER_1K


def test_compute_buffer_worst_case_by_hand(tiny_model):
    prof = load_profile(tiny_model)
    # attention: 4 bytes x 512 tokens x (4 heads x 1024 scores + 1024 mask + 4 x 256 activations)
    assert compute_reserved(prof, 1024) == 4 * 512 * (4 * 1024 + 1024 + 4 * 256)
    # output step: 512 rows of 1024 logits (+ 2 x n_embd) dominates at a short context
    assert compute_reserved(prof, 64) == max(4 * 64 * (4 * 64 + 64 + 1024), 4 * 64 * (1024 + 512))


def _gemma_like(n_layer=12, pattern=None):
    md = {"general.architecture": "gemma3", "gemma3.block_count": n_layer,
          "gemma3.embedding_length": 640, "gemma3.attention.head_count": 4,
          "gemma3.attention.head_count_kv": 1, "gemma3.attention.key_length": 256,
          "gemma3.attention.value_length": 256, "gemma3.attention.sliding_window": 512,
          "gemma3.feed_forward_length": 2048, "gemma3.vocab_size": 1000}
    if pattern is not None:
        md["gemma3.attention.sliding_window_pattern"] = pattern
    return profile_from_header(md, [("token_embd.weight", (640, 1000), 8)])


def test_sliding_window_layers():
    prof = _gemma_like()
    assert prof.swa_layers == (True,) * 5 + (False,) + (True,) * 5 + (False,)
    # llama-cpp-python's default keeps full-size SWA caches; without it the window + a ubatch
    assert kv_cells(prof, 8192) == [8192] * 12
    assert kv_cells(prof, 8192, swa_full=False) == [1024 if s else 8192 for s in prof.swa_layers]
    small = estimate_memory(prof, n_ctx=8192, swa_full=False).kv_ram
    assert small == (10 * 1024 + 2 * 8192) * (256 + 256) * 2
    explicit = _gemma_like(4, pattern=[True, False, True, False])
    assert explicit.swa_layers == (True, False, True, False)


def test_header_prefix_for_remote_files(tiny_model):
    data = tiny_model.read_bytes()
    full = read_header(tiny_model)
    with pytest.raises(HeaderIncomplete):
        parse_header(data[:200])
    prefix = parse_header(data[:full.data_offset])       # no tensor data at all
    assert prefix.tensors == full.tensors
    p = profile_from_header(prefix.metadata, prefix.tensors)
    assert p.size_bytes == load_profile(tiny_model).size_bytes == 3439616
    with pytest.raises(HeaderError):
        parse_header(b"GGML" + data[4:100])


def test_bad_files_give_one_line_errors(tmp_path, tiny_model):
    with pytest.raises(PlannerError, match="no such file"):
        load_profile(tmp_path / "missing.gguf")
    (tmp_path / "text.gguf").write_text("hello, not a model")
    with pytest.raises(PlannerError, match="not a GGUF"):
        load_profile(tmp_path / "text.gguf")
    (tmp_path / "cut.gguf").write_bytes(tiny_model.read_bytes()[:300])
    with pytest.raises(PlannerError, match="truncated"):
        load_profile(tmp_path / "cut.gguf")


def test_retype_reproduces_llama_cpp_quantizer(gemma_model):
    """The Gemma file was written by llama.cpp's quantizer (Q4_K_M, rows of 640 force fallbacks):
    re-deriving every tensor's type from shapes alone must give the same table."""
    actual = load_profile(gemma_model)
    assert actual.file_type == "Q4_K_M"
    predicted = retype(dataclasses.replace(actual, file_type="F16"), "Q4_K_M")
    assert [t[2] for t in predicted.tensors] == [t[2] for t in actual.tensors]
    assert predicted.size_bytes == actual.size_bytes


# Published sizes of llama.cpp-made GGUFs of Meta-Llama-3-8B-Instruct (bytes, rounded to 10 MB).
PUBLISHED_8B = {"F16": 16.07e9, "Q8_0": 8.54e9, "Q6_K": 6.60e9, "Q5_K_M": 5.73e9,
                "Q4_K_M": 4.92e9, "Q3_K_M": 4.02e9, "Q2_K": 3.18e9}


def test_hf_config_profile_matches_published_sizes(llama3_8b_config):
    prof = profile_from_hf_config(llama3_8b_config)
    assert prof.parameters == 8_030_261_248               # Llama-3-8B's published count
    for qtype, size in PUBLISHED_8B.items():
        assert retype(prof, qtype).size_bytes == pytest.approx(size, rel=0.01), qtype


def test_hf_config_parameter_count_stretches_layers(llama3_8b_config):
    prof = profile_from_hf_config(llama3_8b_config, parameters=9_000_000_000)
    assert prof.parameters == pytest.approx(9e9, rel=0.002)
    prof_kv = estimate_memory(prof, n_ctx=8192).kv_ram    # KV depends on dims, not on the count
    assert prof_kv == 32 * 8192 * (1024 + 1024) * 2


def test_hf_config_sliding_window_layers():
    cfg = {"model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 6,
           "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
           "intermediate_size": 2048, "vocab_size": 262144, "sliding_window": 512,
           "tie_word_embeddings": True}
    assert profile_from_hf_config(cfg).swa_layers == (True,) * 5 + (False,)   # gemma3: 5 of 6
    cfg["layer_types"] = ["sliding_attention", "full_attention"] * 3
    prof = profile_from_hf_config(cfg)
    assert prof.swa_layers == (True, False) * 3 and prof.architecture == "gemma3"
    assert prof.head_dim_k == 256 and prof.tied
