"""The memory model against real llama.cpp loads on the CPU (slow: one fresh process per load).

Each case loads a model in a child process (rss_probe.py), evaluates a 512-token prompt and
reports RSS growth; the prediction must be within +-15%. llama.cpp's own "compute buffer size"
line checks the worst-case compute estimate (what a GPU would commit) within 3%.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quantdesk.core.planner import compute_reserved, estimate_memory, load_profile
from tiny_gguf import build_tiny_llama

PROBE = Path(__file__).with_name("rss_probe.py")
BAND = 0.15


def probe(path: Path, n_ctx: int, mmap: bool = True, kv: str = "f16",
          fa: bool = False) -> tuple[dict, float]:
    args = [sys.executable, str(PROBE), str(path), str(n_ctx), "verbose", f"kv={kv}"]
    if not mmap:
        args.append("nommap")
    if fa:
        args.append("fa")
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    m = re.search(r"CPU compute buffer size =\s*([\d.]+) MiB", out.stderr)
    assert m, "llama.cpp did not report its compute buffer"
    return json.loads(out.stdout.strip().splitlines()[-1]), float(m.group(1)) * 2**20


def check(path: Path, n_ctx: int, mmap: bool = True, kv: str = "f16", fa: bool = False) -> None:
    measured, reserved = probe(path, n_ctx, mmap, kv, fa)
    prof = load_profile(path)
    est = estimate_memory(prof, n_ctx=n_ctx, use_mmap=mmap, type_k=kv, type_v=kv, flash_attn=fa)
    grown = measured["rss_after"] - measured["rss_before"]
    # With mmap, RSS also shows clean mapped pages of repacked weights (est.ram_reclaimable).
    predicted = est.rss_bytes if mmap else est.ram_bytes
    assert abs(predicted / grown - 1) <= BAND, (path.name, n_ctx, predicted, grown)
    assert compute_reserved(prof, n_ctx, flash_attn=fa) == pytest.approx(reserved, rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("n_ctx", [512, 2048, 8192])
def test_starter_model_ram(starter_model, n_ctx):
    check(starter_model, n_ctx)


@pytest.mark.slow
@pytest.mark.parametrize("n_ctx", [512, 2048, 8192])
def test_gemma_ram(gemma_model, n_ctx):
    check(gemma_model, n_ctx)


@pytest.mark.slow
def test_gemma_ram_without_mmap(gemma_model):
    check(gemma_model, 2048, mmap=False)


@pytest.mark.slow
def test_held_out_random_llama(tmp_path):
    """A shape no constant was fitted on: 768 wide, 12 heads (4 KV), 50k vocabulary, tied."""
    path = build_tiny_llama(tmp_path / "held-out.gguf", n_embd=768, n_layer=6, n_head=12,
                            n_head_kv=4, n_ff=2048, n_vocab=50000, tied=True, seed=3)
    check(path, 4096)


@pytest.mark.slow
@pytest.mark.parametrize("kv,n_ctx", [("q8_0", 2048), ("q4_0", 8192)])
def test_starter_model_ram_with_a_quantized_kv_cache(starter_model, kv, n_ctx):
    """A quantized V cache runs with flash attention (llama.cpp refuses it without)."""
    check(starter_model, n_ctx, kv=kv, fa=True)


@pytest.mark.slow
def test_gemma_ram_at_its_32k_context_with_a_q4_0_kv_cache(gemma_model):
    """The 32k row with the largest error in RESULTS.md (+6.9 %: the sliding-window mask term
    over-predicts past ~12k), held within the band. ~1 GiB of RSS in a child process."""
    check(gemma_model, 32768, kv="q4_0", fa=True)
