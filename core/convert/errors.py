"""The one exception conversion and quantization raise for bad input: a single line for the user."""
from __future__ import annotations


class ConvertError(Exception):
    """A source that cannot be converted (missing file, damaged data, unsupported model)."""


def shown(name: str) -> str:
    """A name taken from a file, as it may appear in a one-line message: control characters
    escaped, long names cut."""
    return ascii(name if len(name) <= 80 else name[:77] + "...")[1:-1]
