"""The planner with KV-cache types: the context each type reaches, and a quantized KV cache
proposed (labelled, with its cost) before the context is lowered."""
from __future__ import annotations

import json

from quantdesk.core.cli import main
from quantdesk.core.hardware import Hardware
from quantdesk.core.planner import (estimate_memory, load_profile, plan_options, plan_profile,
                                    profile_from_hf_config, recommend)
from quantdesk.core.planner.kv_fit import context_by_kv_type, kv_bytes_per_token

G, MiB = 1 << 30, 1 << 20


def cpu(ram_gib: float) -> Hardware:
    return Hardware("cpu", 8, 16, ["AVX2"], int(ram_gib * G), int(ram_gib * G), [], True, "cpu")


def test_kv_bytes_per_token_by_type(llama3_8b_config):
    prof = profile_from_hf_config(llama3_8b_config)   # 32 layers x 8 KV heads x 128 dims, K + V
    assert kv_bytes_per_token(prof, "f16") == 32 * 2 * 1024 * 2 == 128 * 1024
    assert kv_bytes_per_token(prof, "q8_0") == 32 * 2 * 1024 * 34 // 32
    assert kv_bytes_per_token(prof, "q4_0") == 32 * 2 * 1024 * 18 // 32


def test_flash_attention_auto_is_planned_as_llama_cpp_decides_on_the_cpu(tiny_model):
    prof = load_profile(tiny_model)
    auto = plan_profile(prof, cpu(16), n_ctx=4096, flash_attn="auto")
    on = estimate_memory(prof, n_ctx=4096, flash_attn=True, cpu_repack=True, gpu_backend="cpu")
    off = plan_profile(prof, cpu(16), n_ctx=4096, flash_attn="off")
    assert auto.flash_attn and auto.ram_bytes == on.ram_bytes
    assert not off.flash_attn and off.ram_bytes > auto.ram_bytes   # the KQ scores it skips


def test_prompt_lookup_keeps_a_row_of_logits_per_position(tiny_model):
    prof = load_profile(tiny_model)
    plain = estimate_memory(prof, n_ctx=2048)
    lookup = estimate_memory(prof, n_ctx=2048, prompt_lookup=10)
    assert lookup.logits_ram == 4 * prof.n_vocab * (2048 + 2 * 512 - 1)
    assert lookup.ram_bytes == plain.ram_bytes + lookup.logits_ram


def test_smaller_kv_types_reach_longer_contexts(llama3_8b_config):
    from quantdesk.core.planner import retype
    llama3_8b_config["max_position_embeddings"] = 131072   # Llama 3.1's
    prof = retype(profile_from_hf_config(llama3_8b_config), "Q4_K_M")
    rows = context_by_kv_type(prof, cpu(6))
    by = {r.kv_type: r for r in rows}
    assert [r.kv_type for r in rows] == ["f16", "q8_0", "q4_0"]
    assert 2048 < by["f16"].n_ctx < by["q8_0"].n_ctx < by["q4_0"].n_ctx < 131072
    assert all(r.n_ctx % 256 == 0 and r.plan.fits for r in rows)
    # one step more does not fit: the search found the largest
    nxt = plan_profile(prof, cpu(6), n_ctx=by["f16"].n_ctx + 256, type_k="f16", type_v="f16",
                       flash_attn="auto")
    assert not nxt.fits
    assert by["q8_0"].plan.kv_type_v == "q8_0" and by["q8_0"].plan.flash_attn


def test_a_quantized_kv_cache_is_proposed_before_the_context_is_lowered(llama3_8b_config):
    prof = profile_from_hf_config(llama3_8b_config)
    hw = cpu(4)   # at 8192 with an f16 cache nothing fits (test_recommend: Q2_K at 2048)
    plans = plan_options(prof, hw, n_ctx=8192)
    lowered = recommend(plans, prof, hw)
    assert lowered.n_ctx == 2048 and lowered.kv_type_k == "f16"
    best = recommend(plans, prof, hw, kv_types=("q8_0", "q4_0"))
    assert best.n_ctx == 8192 and best.fits and (best.kv_type_k, best.kv_type_v) == ("q4_0", "q4_0")
    assert "quantized KV cache q4_0 (flash attention auto) to reach context 8192" in best.note
    assert "less KV memory; quality: noticeable loss" in best.note
    roomy = plan_options(prof, cpu(48), n_ctx=8192)
    assert recommend(roomy, prof, cpu(48), kv_types=("q8_0",)).kv_type_k == "f16"  # f16 fits


def test_plan_cli_shows_context_per_kv_type(capsys, starter_model):
    assert main(["plan", str(starter_model), "--ctx", "8192", "--vram", "0", "--ram", "780M",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kv_type"] == ["f16", "f16"] and data["flash_attn"] == "auto"
    rec = data["recommended"]
    assert rec["n_ctx"] == 8192 and rec["kv_type_k"] == "q8_0" and "quantized KV cache q8_0" in \
        rec["note"]
    rows = {r["kv_type"]: r for r in data["context_by_kv_type"]["rows"]}
    assert rows["f16"]["n_ctx"] < 8192 == rows["q8_0"]["n_ctx"] == rows["q8_0"]["n_ctx_limit"]
    assert main(["plan", str(starter_model), "--kv-type", "q8_0", "--ctx", "2048"]) == 0
    out = capsys.readouterr().out
    assert "Context reachable per KV-cache type" in out and "\nq8_0 " in out
    assert main(["plan", str(starter_model), "--kv-type", "q8_0", "--flash-attn", "off"]) == 2
    assert "needs flash attention" in capsys.readouterr().err
    # K and V apart: the JSON names both, and the table has a row for each.
    assert main(["plan", str(starter_model), "--kv-type", "q8_0,q4_0", "--flash-attn", "on",
                 "--ctx", "2048", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kv_type"] == ["q8_0", "q4_0"] and data["flash_attn"] == "on"
    assert {"q8_0", "q4_0"} <= {r["kv_type"] for r in data["context_by_kv_type"]["rows"]}
