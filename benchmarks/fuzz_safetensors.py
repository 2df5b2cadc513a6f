"""Structure-aware safetensors fuzzing at a larger count than CI: prints what became of the mutants.

    .venv/bin/python benchmarks/fuzz_safetensors.py [--count 10000] [--seed 0] [--top 25]

Each mutant (tests/fuzz/safetensors_mutants.py: dtypes, shapes, offsets, names, nesting, the
length prefix, truncation before and while reading) is opened as a model source and every tensor
read. The expected outcomes are "accepted" and "refused" (ConvertError, one line). Anything else is
a bug: an exception (counted by type) or the process killed by a signal (a SIGBUS from a file that
shrank under a memory map), so the mutants run in a child process that is restarted after the
mutant that killed it. Prints a Markdown summary for benchmarks/RESULTS.md; exits 1 when any
mutant ended otherwise or took over 1 s.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_children import ROOT, Tally, run_children  # noqa: E402


def child(seed: int, start: int, count: int) -> None:
    """Run mutants start..count-1, one JSON line each, announced before it runs."""
    sys.path.insert(0, str(ROOT))
    from tests.fuzz.safetensors_mutants import mutants, reason, run_mutant
    with tempfile.TemporaryDirectory() as tmp:
        for i, m in enumerate(mutants(seed=seed, count=count)):
            if i < start:
                continue
            print(json.dumps({"start": i, "mutant": str(m)[:160]}), flush=True)
            t0 = time.perf_counter()
            try:
                outcome = run_mutant(m, Path(tmp) / "m")
                row = {"kind": outcome.kind, "reason": reason(outcome.message) if outcome.message else ""}
            except Exception as exc:  # noqa: BLE001 - counting bugs is the point
                row = {"kind": "other error", "error": type(exc).__name__,
                       "detail": (str(exc).splitlines() or [""])[0][:200]}
            row.update(done=i, seconds=time.perf_counter() - t0)
            print(json.dumps(row), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=25, help="how many refusal kinds to list")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        child(a.seed, a.child, a.count)
        return 0

    tally = Tally()
    t_all = time.perf_counter()
    for row, mutant in run_children(lambda start: [sys.executable, __file__, "--child", str(start), "--seed",
                                                   str(a.seed), "--count", str(a.count)], a.count):
        tally.add(row, mutant)
    total = time.perf_counter() - t_all

    print(f"## Safetensors fuzz: {a.count} mutants, seed {a.seed}\n")
    print(f"Machine: {platform.machine()} {platform.system()}, Python {platform.python_version()}; "
          f"{total:.1f} s in all ({1000 * total / max(a.count, 1):.2f} ms per mutant).\n")
    tally.print_outcomes()
    print(f"\nSlowest: {tally.slowest[0] * 1000:.1f} ms ({tally.slowest[1]}); over 1 s: {tally.over_1s}\n")
    tally.print_reasons(a.top, "ConvertError")
    return 1 if tally.bugs or tally.over_1s else 0

if __name__ == "__main__":
    sys.exit(main())
