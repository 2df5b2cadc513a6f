"""Fixtures for the GGUF/library tests."""
from __future__ import annotations

from pathlib import Path

import pytest
from gguf_testfiles import write_tiny_gguf


@pytest.fixture
def tiny_gguf(tmp_path) -> Path:
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path)
    return path
