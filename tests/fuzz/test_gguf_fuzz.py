"""Structure-aware GGUF mutants: each ends in a valid model or the project's own error, quickly
and in bounded memory, and the planner plans what is accepted or raises PlannerError.

The mutants run in a child process (tests/fuzz/gguf_mutants.py --child) whose address space may
grow by 256 MiB at most, so a memory bomb fails here as a MemoryError naming the mutant instead
of swapping the machine; benchmarks/fuzz_gguf.py runs many more and prints the counts.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .gguf_mutants import Mutant, encode, hardware, mutants, run_mutant, seed_model

COUNT = 2000
HERE = Path(__file__).resolve().parent


def test_the_seed_itself_is_a_valid_model_the_planner_plans(tmp_path):
    outcome = run_mutant(Mutant(-1, ["unchanged"], encode(seed_model())[0]), tmp_path / "m.gguf",
                         hw=hardware(), every_type=True)
    assert (outcome.kind, outcome.planned) == ("accepted", "plan/plan/plan"), outcome


def test_mutants_are_the_same_for_the_same_seed():
    a = [(str(m), m.file) for m in mutants(seed=3, count=30)]
    assert a == [(str(m), m.file) for m in mutants(seed=3, count=30)]
    assert len({f for _, f in a}) > 25


def test_mutants_end_in_a_valid_model_or_a_gguf_error(tmp_path):
    proc = subprocess.run([sys.executable, str(HERE / "gguf_mutants.py"), "--child", "0", "--count", str(COUNT),
                           "--limit-mb", "256"], capture_output=True, text=True, timeout=600,
                          cwd=HERE.parent.parent)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    started = {r["start"]: r["mutant"] for r in rows if "start" in r}
    done = [r for r in rows if "done" in r]
    assert proc.returncode == 0 and len(done) == COUNT, (
        f"the child died (exit {proc.returncode}) in {started.get(len(done), '?')}: {proc.stderr[-2000:]}")
    bugs = [f"{started[r['done']]} -> {r['error']}: {r['detail']}" for r in done if r["kind"] == "other error"]
    assert not bugs, "\n".join(bugs[:10])
    # hang and memory guards, in CPU seconds and peak-RSS growth: a ~40 KB file has no business
    # taking a second or 256 MB (the cases found: blk.1000000000.w, 200,000 entries)
    slow = [(r["cpu"], started[r["done"]]) for r in done if r["cpu"] >= 1.0]
    assert not slow, slow[:5]
    assert max(r["rss_growth_mb"] for r in done) < 256
    kinds = Counter(r["kind"] for r in done)
    planned = Counter(p for r in done for p in r["planned"].split("/") if p != "-")
    reasons = Counter(r["reason"] for r in done if r["kind"] == "refused")
    # the harness reaches both outcomes, many different refusals (not one early check), and
    # the planner both plans and refuses
    assert kinds["accepted"] >= COUNT // 10 and kinds["refused"] >= COUNT // 2, kinds
    assert len(reasons) >= 30, reasons
    assert planned["plan"] >= COUNT // 5 and planned["PlannerError"] >= 10, planned
