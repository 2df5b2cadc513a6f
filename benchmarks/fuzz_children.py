"""What the fuzz benchmarks share: mutants run in child processes (a mutant may kill its process:
SIGBUS from a file that shrank under a map, the kernel's OOM killer), and the tally they print.

A child prints one JSON line {"start": i, "mutant": text} before each mutant and one row with
"done": i, "kind" ("accepted" | "refused" | "other error"), "seconds" after it (refusals add
"reason", other errors "error" and "detail"). `run_children` restarts a child that died after the
mutant it was running, which comes back as an "other error" row ("killed by SIGBUS").
"""
from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent


def run_children(argv_from: Callable[[int], list[str]], count: int) -> Iterator[tuple[dict, str]]:
    """(row, mutant text) for mutants 0..count-1; `argv_from(i)` starts a child at mutant i."""
    nxt = 0
    while nxt < count:
        proc = subprocess.Popen(argv_from(nxt), stdout=subprocess.PIPE, text=True, cwd=ROOT)
        current = None
        for line in proc.stdout:
            row = json.loads(line)
            if "start" in row:
                current = row
                continue
            yield row, current["mutant"]
            nxt = row["done"] + 1
        rc = proc.wait()
        if rc != 0:   # the mutant announced last killed the child
            name = signal.Signals(-rc).name if rc < 0 else f"exit {rc}"
            yield ({"kind": "other error", "error": f"killed by {name}", "detail": "", "seconds": 0.0},
                   current["mutant"] if current else "?")
            nxt = (current["start"] if current else nxt) + 1


class Tally:
    """Counts of outcomes, refusal kinds and bugs, the slowest mutant by `time_key`."""

    def __init__(self, time_key: str = "seconds"):
        self.kinds, self.reasons, self.bugs, self.first_bug = Counter(), Counter(), Counter(), {}
        self.time_key, self.slowest, self.over_1s = time_key, (0.0, ""), 0

    def add(self, row: dict, mutant: str) -> None:
        self.kinds[row["kind"]] += 1
        if row["kind"] == "refused":
            self.reasons[row["reason"]] += 1
        elif row["kind"] == "other error":
            self.bugs[row["error"]] += 1
            self.first_bug.setdefault(row["error"], f"{mutant} -> {row['detail']}" if row["detail"] else mutant)
        took = row.get(self.time_key, 0.0)
        self.slowest = max(self.slowest, (took, mutant), key=lambda s: s[0])
        self.over_1s += took >= 1.0

    def print_outcomes(self) -> None:
        print("| outcome | mutants |\n|---|---:|")
        for kind in ("accepted", "refused", "other error"):
            print(f"| {kind} | {self.kinds[kind]} |")

    def print_reasons(self, top: int, error_type: str) -> None:
        print(f"Refusals ({error_type}) by kind, top {top} of {len(self.reasons)}:\n")
        print("| kind | mutants |\n|---|---:|")
        for text, n in self.reasons.most_common(top):
            print(f"| {text.replace('|', '/')} | {n} |")
        if self.bugs:
            print("\nOther errors (bugs):\n")
            for name, n in self.bugs.most_common():
                print(f"- {name}: {n}, first: {self.first_bug[name]}")
