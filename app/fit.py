"""Fit badges: the planner's verdict for a model on this machine, as a short coloured label.

The planning itself (header parse, hardware probe) runs in pool threads through the runtime
layer (quantdesk.core.runtime.library.LibrarySession.fit_verdicts); the GUI thread only formats
finished Plans.
"""
from __future__ import annotations

from quantdesk.core.runtime.library import BADGE_CTX  # noqa: F401 - the badges' context length

from . import formatting

# Same colours as the Discover page's variant list, so a verdict reads the same everywhere.
FIT_COLOURS = {"full-gpu": "#1c7c3c", "partial": "#9a6a00", "cpu": "#2d5fa8",
               "no-fit": "#a12a1d"}
FIT_LABELS = {"full-gpu": "full GPU", "partial": "partial", "cpu": "CPU",
              "no-fit": "does not fit"}


def badge(plan) -> str:
    """"full GPU", "partial 12/31", "CPU", "does not fit". Layers count as llama.cpp's
    n_gpu_layers does: the repeating layers plus the output, so n_layer + 1 is everything."""
    label = FIT_LABELS.get(plan.fit, plan.fit)
    if plan.fit == "partial":
        return f"{label} {plan.gpu_layers}/{plan.n_layer + 1}"
    return label


def tooltip(plan) -> str:
    ram = formatting.size(plan.ram_bytes)
    vram = formatting.size(plan.vram_bytes)
    return f"{plan.note}\nat context {plan.n_ctx}: RAM {ram}, VRAM {vram}"


def hardware(overrides: dict | None = None):
    """This machine as the planner sees it, with the user's VRAM/RAM figures when given.
    Called in a pool thread: the first probe may start a short child process."""
    from quantdesk.core.hardware import detect
    return detect().with_overrides(**(overrides or {}))
