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
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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

    kinds, reasons, bugs, first_bug = Counter(), Counter(), Counter(), {}
    slowest, over_1s, nxt = (0.0, ""), 0, 0
    t_all = time.perf_counter()
    while nxt < a.count:
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(nxt), "--seed", str(a.seed),
                                 "--count", str(a.count)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        current = None
        for line in proc.stdout:
            row = json.loads(line)
            if "start" in row:
                current = row
                continue
            kinds[row["kind"]] += 1
            if row["kind"] == "refused":
                reasons[row["reason"]] += 1
            elif row["kind"] == "other error":
                bugs[row["error"]] += 1
                first_bug.setdefault(row["error"], f"{current['mutant']} -> {row['detail']}")
            slowest = max(slowest, (row["seconds"], current["mutant"]), key=lambda s: s[0])
            over_1s += row["seconds"] > 1.0
            nxt = row["done"] + 1
        rc = proc.wait()
        if rc != 0:   # the mutant announced last killed the child
            name = signal.Signals(-rc).name if rc < 0 else f"exit {rc}"
            kinds["other error"] += 1
            bugs[f"killed by {name}"] += 1
            first_bug.setdefault(f"killed by {name}", current["mutant"] if current else "?")
            nxt = (current["start"] if current else nxt) + 1
    total = time.perf_counter() - t_all

    print(f"## Safetensors fuzz: {a.count} mutants, seed {a.seed}\n")
    print(f"Machine: {platform.machine()} {platform.system()}, Python {platform.python_version()}; "
          f"{total:.1f} s in all ({1000 * total / max(a.count, 1):.2f} ms per mutant).\n")
    print("| outcome | mutants |\n|---|---:|")
    for kind in ("accepted", "refused", "other error"):
        print(f"| {kind} | {kinds[kind]} |")
    print(f"\nSlowest: {slowest[0] * 1000:.1f} ms ({slowest[1]}); over 1 s: {over_1s}\n")
    print(f"Refusals (ConvertError) by kind, top {a.top} of {len(reasons)}:\n")
    print("| kind | mutants |\n|---|---:|")
    for text, n in reasons.most_common(a.top):
        print(f"| {text.replace('|', '/')} | {n} |")
    if bugs:
        print("\nOther errors (bugs):\n")
        for name, n in bugs.most_common():
            print(f"- {name}: {n}, first: {first_bug[name]}")
    return 1 if bugs or over_1s else 0


if __name__ == "__main__":
    sys.exit(main())
