"""The planner's one exception (its own module: the profile raises it, the package exports it)."""
from __future__ import annotations


class PlannerError(Exception):
    """One line for the user: the model cannot be planned (unreadable, not GGUF, absurd metadata)."""
