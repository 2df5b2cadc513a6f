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


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private data folder and an empty HF cache, so the user's real ones are never touched."""
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    (tmp_path / "hf-cache").mkdir()
    return tmp_path / "home"
