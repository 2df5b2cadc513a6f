"""Structure-aware GGUF fuzzing at a larger count than CI: prints what became of the mutants.

    .venv/bin/python benchmarks/fuzz_gguf.py [--count 10000] [--seed 0] [--top 25] [--limit-mb 256]
    .venv/bin/python benchmarks/fuzz_gguf.py --big        # 200,000 metadata / 100,000 tensor entries

Each mutant (tests/fuzz/gguf_mutants.py: counts, lengths, value types, NaN/inf, names with control
characters, dims, offsets, alignment, truncation, huge layer indices, many entries) is validated as
a local file (inspect_gguf) and as a remote prefix (read_prefix), and what is accepted is planned
(plan_for_model, plan_header; options_for on every tenth). The expected outcomes are "accepted"
and "refused" (GGUFError/HeaderError, one line), and for the planner a Plan or PlannerError.
Anything else is a bug: an exception (counted by type) or the child killed by a signal. The
mutants run in child processes with their address space capped at --limit-mb over the imports
(restarted after a mutant that killed one). Prints a Markdown summary for benchmarks/RESULTS.md;
exits 1 when any mutant ended otherwise, took 1 s of CPU or grew the peak RSS past the limit.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_children import ROOT, Tally, run_children  # noqa: E402

CHILD = ROOT / "tests" / "fuzz" / "gguf_mutants.py"


def fuzz(a) -> int:
    tally, planned, peak = Tally(time_key="cpu"), Counter(), 0.0
    t_all = time.perf_counter()
    for row, mutant in run_children(lambda start: [sys.executable, str(CHILD), "--child", str(start), "--seed",
                                                   str(a.seed), "--count", str(a.count), "--limit-mb",
                                                   str(a.limit_mb)], a.count):
        tally.add(row, mutant)
        planned.update(p for p in row.get("planned", "-").split("/") if p != "-")
        peak = max(peak, row.get("rss_growth_mb", 0.0))
    total = time.perf_counter() - t_all

    print(f"## GGUF fuzz: {a.count} mutants, seed {a.seed}\n")
    print(f"Machine: {a.machine or platform.machine() + ' ' + platform.system()}, Python "
          f"{platform.python_version()}; {total:.1f} s in all ({1000 * total / max(a.count, 1):.2f} ms "
          f"per mutant, wall).\n")
    tally.print_outcomes()
    print(f"\nPlanner on what the reader accepted: {planned['plan']} plans, "
          f"{planned['PlannerError']} PlannerError.\n")
    print(f"Slowest: {tally.slowest[0] * 1000:.1f} ms of CPU ({tally.slowest[1][:160]}); 1 s or more: "
          f"{tally.over_1s}; largest peak-RSS growth: {peak:.1f} MiB (limit {a.limit_mb} MiB)\n")
    tally.print_reasons(a.top, "GGUFError/HeaderError")
    return 1 if tally.bugs or tally.over_1s or peak >= a.limit_mb else 0


def _big_file(path: Path, n_kv: int, n_tensors: int) -> None:
    """A valid llama GGUF with n_kv extra uint32 metadata entries and n_tensors tiny F32 tensors."""
    sys.path.insert(0, str(ROOT))
    from tests.fuzz.gguf_mutants import KV, U32, Tensor, encode, seed_model
    model = seed_model()
    model.kvs += [KV(f"x.k{i}".encode(), U32, i) for i in range(n_kv)]
    model.tensors += [Tensor(f"x.{i}".encode(), [32], 0) for i in range(n_tensors)]
    path.write_bytes(encode(model, data_cap=1 << 30)[0])


def big(a) -> int:
    """Time header validation (check_file: the reader plus the data layout), inspect_gguf and a
    plan of files with 200,000 metadata entries and with 100,000 tensors, in a fresh process."""
    code = r"""
import sys, time
from quantdesk.core.gguf import check_file, inspect_gguf
from quantdesk.core.gguf.header import ggml_types
from quantdesk.core.planner import plan_for_model
sys.path.insert(0, sys.argv[2])
from tests.fuzz.gguf_mutants import hardware
ggml_types(); hw = hardware()
for label, fn in (("header validation (check_file)", check_file), ("inspect_gguf", inspect_gguf),
                  ("plan_for_model", lambda p: plan_for_model(p, n_ctx=4096, hardware=hw))):
    runs = []
    for _ in range(3):
        w, c = time.perf_counter(), time.process_time()
        fn(sys.argv[1])
        runs.append((time.perf_counter() - w, time.process_time() - c))
    best = min(runs)
    print(f"| {label} | {runs[0][0]:.3f} | {runs[0][1]:.3f} | {best[0]:.3f} | {best[1]:.3f} |")
"""
    print(f"## GGUF header size: seconds, first run and best of 3 (the planner caches a profile)\n\nMachine: "
          f"{a.machine or platform.machine() + ' ' + platform.system()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        for n_kv, n_t, label in ((200_000, 0, "200,000 metadata entries"), (0, 100_000, "100,000 tensors")):
            path = Path(tmp) / "big.gguf"
            _big_file(path, n_kv, n_t)
            print(f"{label} ({path.stat().st_size / 1e6:.1f} MB):\n\n| step | first, wall | first, CPU | best, wall "
                  f"| best, CPU |\n|---|---:|---:|---:|---:|",
                  flush=True)
            subprocess.run([sys.executable, "-c", code, str(path), str(ROOT)], check=True, cwd=ROOT)
            print(flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=25, help="how many refusal kinds to list")
    ap.add_argument("--limit-mb", type=int, default=256)
    ap.add_argument("--machine", default=os.environ.get("QUANTDESK_MACHINE", ""),
                    help="how to name the machine in the output")
    ap.add_argument("--big", action="store_true", help="time 200,000 metadata / 100,000 tensor entries")
    a = ap.parse_args()
    return big(a) if a.big else fuzz(a)


if __name__ == "__main__":
    sys.exit(main())
