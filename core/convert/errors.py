"""The one exception conversion and quantization raise for bad input: a single line for the user."""
from __future__ import annotations


class ConvertError(Exception):
    """A source that cannot be converted (missing file, damaged data, unsupported model)."""


class AlreadyQuantized(ConvertError):
    """A GGUF source whose weights are quantized already: re-quantizing compounds the error, so
    the caller must allow it explicitly (`allow_requantize=True`)."""

    def __init__(self, message: str, main_type: str):
        super().__init__(message)
        self.main_type = main_type   # the file's type ("Q4_1"), not token_embd's
