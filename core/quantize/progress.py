"""Progress reports and the cancel token of a long quantization (plain Python; app/ adapts them)."""
from __future__ import annotations

from dataclasses import dataclass

from ..cancel import CancelToken  # noqa: F401 - re-exported: the token these jobs honour


@dataclass(frozen=True)
class Progress:
    done_bytes: int      # source bytes processed so far
    total_bytes: int
    tensor: str          # the tensor being written
    index: int           # 1-based tensor number
    count: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 1.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the average rate so far; None until there is a rate."""
        if self.done_bytes <= 0 or self.elapsed_s <= 0:
            return None
        return self.elapsed_s * (self.total_bytes - self.done_bytes) / self.done_bytes
