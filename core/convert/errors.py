"""The one exception conversion and quantization raise for bad input: a single line for the user."""
from __future__ import annotations


class ConvertError(Exception):
    """A source that cannot be converted (missing file, damaged data, unsupported model)."""
