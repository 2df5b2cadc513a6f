"""GPU layers, typed: a count, "auto" (the planner decides) or "all" (every layer and the output).

Why a type: the same -1 used to mean "auto" in the window and its stored conversations but "all
layers" in the engine and the CLI. Every door now parses with `parse_gpu_layers` and the one
conversion to llama.cpp's integer (-1 = all) is `llama_gpu_layers`, used when a load is sent.
"""
from __future__ import annotations

from typing import Literal, Union

GpuLayers = Union[int, Literal["auto", "all"]]
AUTO: GpuLayers = "auto"
ALL: GpuLayers = "all"
LLAMA_ALL = -1  # llama.cpp's n_gpu_layers for "every layer"

_HELP = "expected a number of layers, 'auto' or 'all'"


def parse_gpu_layers(value) -> GpuLayers:
    """An int >= 0, "auto" or "all" from what a door holds (CLI text, JSON, a stored setting).

    -1 is accepted as "all": that is what it meant to llama.cpp and on the CLI (stored chats that
    used -1 for "auto" are rewritten by the chat store's migration before they reach here)."""
    if isinstance(value, bool):
        raise ValueError(f"{_HELP}, got {value!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in (AUTO, ALL):
            return text
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{_HELP}, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"{_HELP}, got {value!r}")
    if value == LLAMA_ALL:
        return ALL
    if value < 0:
        raise ValueError(f"{_HELP}, got {value}")
    return value


def llama_gpu_layers(layers: GpuLayers) -> int:
    """llama.cpp's n_gpu_layers for a resolved choice. "auto" must be resolved first (the model
    manager asks the planner); passing it here is a programming error."""
    layers = parse_gpu_layers(layers)
    if layers == AUTO:
        raise ValueError("'auto' GPU layers must be resolved by the planner before a load")
    return LLAMA_ALL if layers == ALL else int(layers)


def describe_gpu_layers(layers: GpuLayers) -> str:
    """How a choice reads to a person: "auto", "all", "0 (CPU only)", "12"."""
    layers = parse_gpu_layers(layers)
    if layers == 0:
        return "0 (CPU only)"
    return str(layers)
