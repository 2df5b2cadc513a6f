"""The model manager's events: they go to the `report` callback of the call that caused them and
to every subscriber (ModelManager.subscribe), in the calling thread."""
from __future__ import annotations

from dataclasses import dataclass

from quantdesk.core.engine.types import LoadResult

from .model_plan import ResolvedLoad
from .model_request import LoadRequest


@dataclass(frozen=True)
class ModelLoading:
    request: LoadRequest


@dataclass(frozen=True)
class ModelPlanned:
    resolved: ResolvedLoad     # the plan the load follows


@dataclass(frozen=True)
class ModelLoaded:
    resolved: ResolvedLoad
    result: LoadResult
    vram_growth: int | None    # NVML used-memory growth across the load; None without NVIDIA
    reused: bool = False       # True: it was loaded already, nothing new happened


@dataclass(frozen=True)
class ModelUnloaded:
    path: str

