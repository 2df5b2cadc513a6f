"""Recommendation rules as tables: hardware x model -> expected choice."""
from __future__ import annotations

import pytest

from quantdesk.core.hardware import GPU, Hardware
from quantdesk.core.planner import (load_profile, plan_for_model, plan_options, plan_profile,
                                    profile_from_hf_config, recommend, retype)

G = 1 << 30


def hw(vram: float = 0, ram: float = 32, offload: bool = True, apple: bool = False) -> Hardware:
    gpus = []
    if vram:
        gpus = [GPU("Apple M2" if apple else "RTX", "apple" if apple else "nvidia", int(vram * G),
                    int(vram * G), "metal" if apple else "cuda", unified=apple)]
    return Hardware("cpu", 8, 16, ["AVX2"], int(ram * G), int(ram * G), gpus, offload,
                    "metal" if apple else "cuda")


# Llama-3-8B at n_ctx 8192 (KV cache alone: 1 GiB).
# (hardware, expected type, expected fit, expected n_ctx)
TABLE_8B = [
    ("24 GiB GPU: best type fully on GPU, Q8_0 over F16", hw(24), "Q8_0", "full-gpu", 8192),
    ("12 GiB GPU: Q8_0 still fits fully", hw(12), "Q8_0", "full-gpu", 8192),
    ("8 GiB GPU: Q6_K is the best that fits fully", hw(8), "Q6_K", "full-gpu", 8192),
    ("6 GiB GPU: Q4_K_M mostly on the GPU beats Q3 fully on it", hw(6), "Q4_K_M", "partial", 8192),
    ("4 GiB GPU: Q4_K_M split", hw(4), "Q4_K_M", "partial", 8192),
    ("no GPU, 32 GiB: Q4_K_M on the CPU", hw(0, 32), "Q4_K_M", "cpu", 8192),
    ("GPU but CPU-only llama.cpp", hw(8, offload=False), "Q4_K_M", "cpu", 8192),
    ("no GPU, 6 GiB: Q4_K_M and Q4_K_S too big, Q4_0 fits", hw(0, 6), "Q4_0", "cpu", 8192),
    ("no GPU, 4 GiB: context lowered to make Q2_K fit", hw(0, 4), "Q2_K", "cpu", 2048),
    ("Apple 16 GiB unified: Metal share holds Q8_0", hw(16 * 2 / 3, 16, apple=True), "Q8_0",
     "full-gpu", 8192),
]


@pytest.mark.parametrize("label,hardware,qtype,fit,n_ctx", TABLE_8B, ids=[r[0] for r in TABLE_8B])
def test_recommendation_table_llama3_8b(llama3_8b_config, label, hardware, qtype, fit, n_ctx):
    prof = profile_from_hf_config(llama3_8b_config)
    plans = plan_options(prof, hardware, n_ctx=8192)
    best = recommend(plans, prof, hardware)
    assert (best.type, best.fit, best.n_ctx) == (qtype, fit, n_ctx), best.note
    if n_ctx < 8192:
        assert "context lowered from 8192 to 2048" in best.note


def test_nothing_fits(llama3_8b_config):
    prof = profile_from_hf_config(llama3_8b_config)
    plans = plan_options(prof, hw(0, 2), n_ctx=8192)
    assert all(p.fit == "no-fit" for p in plans)
    assert recommend(plans, prof, hw(0, 2)) is None


def test_gpu_layers_is_the_largest_that_fits(llama3_8b_config):
    prof = retype(profile_from_hf_config(llama3_8b_config), "Q4_K_M")
    h = hw(4)
    plan = plan_profile(prof, h, n_ctx=8192)
    from quantdesk.core.planner import estimate_memory, vram_budget
    assert 0 < plan.gpu_layers < prof.n_layer
    assert estimate_memory(prof, n_ctx=8192, n_gpu_layers=plan.gpu_layers).vram_bytes <= vram_budget(h)
    assert estimate_memory(prof, n_ctx=8192, n_gpu_layers=plan.gpu_layers + 1).vram_bytes > vram_budget(h)


# The real test models on small machines (their own file type, as plan_for_model sees them).
# (model fixture, vram GiB, ram GiB, n_ctx, expected fit, expected n_ctx)
TABLE_FILES = [
    ("starter_model", 0, 16, 4096, "cpu", 4096),
    ("starter_model", 2, 16, 4096, "full-gpu", 4096),
    ("gemma_model", 0, 16, 8192, "cpu", 8192),
    ("gemma_model", 0.75, 16, 2048, "partial", 2048),   # 0.5 GiB logits buffer keeps output off
    ("gemma_model", 0, 0.85, 8192, "cpu", 2048),        # RAM forces a shorter context
    ("gemma_model", 0, 0.5, 8192, "no-fit", 512),
]


@pytest.mark.parametrize("fixture,vram,ram,n_ctx,fit,ctx_out", TABLE_FILES)
def test_plan_for_model_table(request, fixture, vram, ram, n_ctx, fit, ctx_out):
    path = request.getfixturevalue(fixture)
    plan = plan_for_model(path, n_ctx=n_ctx, hardware=hw(), vram=int(vram * G), ram=int(ram * G))
    assert (plan.fit, plan.n_ctx) == (fit, ctx_out), plan.note
    assert plan.type == load_profile(path).file_type
    if ctx_out < n_ctx and fit != "no-fit":
        assert f"context lowered from {n_ctx} to {ctx_out}" in plan.note


def test_forced_gpu_layers(gemma_model):
    plan = plan_for_model(gemma_model, n_ctx=2048, hardware=hw(8), n_gpu_layers=5)
    assert plan.gpu_layers == 5 and plan.fit == "partial"


def test_options_for_every_source_kind(gemma_model, llama3_8b_config):
    """The GUI's entry point: a GGUF path, a core.gguf.ModelInfo, an HF config + parameters."""
    from quantdesk.core.gguf import inspect_gguf, read_header
    from quantdesk.core.planner import options_for, plan_header
    h = hw(8)
    by_path, best_path = options_for(gemma_model, n_ctx=4096, hardware=h, types=["Q8_0", "Q4_K_M"])
    by_info, _ = options_for(inspect_gguf(gemma_model), n_ctx=4096, hardware=h,
                             types=["Q8_0", "Q4_K_M"])
    assert [p.to_json() for p in by_path] == [p.to_json() for p in by_info]
    assert [p.type for p in by_path] == ["Q8_0", "Q4_K_M"] and best_path.type == "Q8_0"
    assert [p.estimated for p in by_path] == [True, False]
    hf, best = options_for(llama3_8b_config, n_ctx=8192, hardware=h, parameters=8_030_261_248)
    assert best.type == "Q6_K" and len(hf) >= 10
    header = read_header(gemma_model)
    remote = plan_header(header.metadata, header.tensors, n_ctx=4096, hardware=h)
    assert remote.to_json() == by_path[1].to_json()


def test_planning_never_loads_llama_cpp(starter_model):
    """The GUI plans in its own process: llama.cpp (and its GPU backends) must stay out of it."""
    import subprocess
    import sys
    code = ("import sys; from quantdesk.core.planner import plan_for_model; "
            f"p = plan_for_model({str(starter_model)!r}, n_ctx=2048); "
            "print(p.fit, 'llama_cpp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"
