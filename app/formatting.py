"""Human-readable numbers for the UI."""
from __future__ import annotations

import re

_SPLIT_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")


def params(n: int | None) -> str:
    if not n:
        return "?"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            value = n / div
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(n)


def size(n: int | None) -> str:
    """Bytes in the same decimal units as the CLI and the engine's messages (1.2 MB = 1.2e6)."""
    if n is None:
        return "?"
    from quantdesk.core.units import human_bytes  # standard library only: light
    return human_bytes(n)


def eta(seconds: float | None) -> str:
    """"ETA 3:07" for a job's remaining seconds ("ETA --:--" while unknown)."""
    if seconds is None:
        return "ETA --:--"
    s = int(seconds + 0.5)
    return f"ETA {s // 60}:{s % 60:02d}"


def one_line(exc: BaseException) -> str:
    """The first line of an error for a banner or a cell; the exception's type if it has no text."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def model_summary(info) -> str:
    """One line: architecture, parameters, quant, layers, context, template, size."""
    template = "chat template" if info.has_chat_template else "no chat template"
    return (f"{info.architecture}, {params(info.parameters)} parameters, {info.file_type}, "
            f"{info.block_count} layers, context {info.context_length}, {template}, "
            f"{size(info.size_bytes)}")


def display_name(entry) -> str:
    """The file name people recognise (split suffix dropped); general.name is often vaguer."""
    path = entry.info.path if entry.info is not None else entry.path
    stem = path.name[:-5] if path.name.lower().endswith(".gguf") else path.name
    return _SPLIT_SUFFIX.sub("", stem)
