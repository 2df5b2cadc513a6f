"""Fit badges: the planner's verdict for a model on this machine, as a short coloured label.

The planning itself (header parse, hardware probe) runs in pool threads through the functions
here; the GUI thread only formats finished Plans.
"""
from __future__ import annotations

from . import formatting
from .formatting import one_line

# Same colours as the Discover page's variant list, so a verdict reads the same everywhere.
FIT_COLOURS = {"full-gpu": "#1c7c3c", "partial": "#9a6a00", "cpu": "#2d5fa8",
               "no-fit": "#a12a1d"}
FIT_LABELS = {"full-gpu": "full GPU", "partial": "partial", "cpu": "CPU",
              "no-fit": "does not fit"}
# Context length the badges assume: the chat page's default, so a badge says what Load will do.
BADGE_CTX = 2048


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
    hw = detect()
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    return hw.with_overrides(**overrides) if overrides else hw


def plan_entries(entries, overrides: dict | None = None, n_ctx: int = BADGE_CTX) -> dict:
    """{path string: Plan or one-line error} for every readable library entry (pool thread)."""
    from quantdesk.core.planner import plan_for_model
    hw = hardware(overrides)
    out = {}
    for entry in entries:
        if entry.info is None:
            continue
        try:
            out[str(entry.path)] = plan_for_model(entry.info, n_ctx=n_ctx, hardware=hw,
                                                  lower_ctx=False)
        except Exception as exc:  # noqa: BLE001 - one odd file must not hide the others' badges
            out[str(entry.path)] = one_line(exc)
    return out
