"""Progress reports and the cancel token of evaluations and imatrix runs (plain Python)."""
from __future__ import annotations

from dataclasses import dataclass

from ..cancel import CancelToken  # noqa: F401 - re-exported: the token these jobs honour


@dataclass(frozen=True)
class EvalProgress:
    stage: str          # "reference", "model", "imatrix"
    model: str          # file name being evaluated
    index: int          # 1-based model number within the run (the reference counts as 0)
    count: int          # models in the run (reference excluded)
    done: int           # chunks done in this stage
    total: int          # chunks in this stage
    steps_done: int     # chunks done over the whole run
    steps_total: int    # chunks over the whole run (estimated until the text is tokenized)

    @property
    def fraction(self) -> float:
        return min(1.0, self.steps_done / self.steps_total) if self.steps_total else 0.0
