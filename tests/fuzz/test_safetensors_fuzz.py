"""Structure-aware safetensors mutants: each ends in a valid open or ConvertError, quickly.

Every mutant goes through the whole pre-writing path (header, tensor map, the architecture's
shape table, reading each tensor whole and by rows); benchmarks/fuzz_safetensors.py runs many
more and prints the counts.
"""
from __future__ import annotations

import time
from collections import Counter

from .safetensors_mutants import Mutant, encode, mutants, reason, run_mutant, seed_checkpoint

COUNT = 400


def test_the_seed_itself_opens_and_reads(tmp_path):
    outcome = run_mutant(Mutant(seed=-1, ops=["unchanged"], file=encode(*seed_checkpoint())), tmp_path / "seed")
    assert outcome.kind == "accepted", outcome.message


def test_mutants_end_in_a_valid_open_or_a_convert_error(tmp_path):
    kinds, reasons = Counter(), Counter()
    for m in mutants(seed=0, count=COUNT):
        cpu = time.process_time()
        outcome = run_mutant(m, tmp_path / "m")   # anything but ConvertError fails here, naming m
        cpu = time.process_time() - cpu
        # a hang guard, in CPU seconds so a busy machine does not fail it: a tiny file has no
        # business taking a second (the cases found: 200,000-deep nesting, 10^20 shapes)
        assert cpu < 1.0, f"{m} took {cpu:.2f} s of CPU"
        kinds[outcome.kind] += 1
        if outcome.kind == "refused":
            reasons[reason(outcome.message)] += 1
    # the harness reaches both outcomes and many different refusals (not one early check)
    assert kinds["accepted"] >= 10 and kinds["refused"] >= COUNT // 2, kinds
    assert len(reasons) >= 15, reasons
