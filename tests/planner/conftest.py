"""Planner fixtures: test-built GGUFs with known shapes, and a Llama-3-8B config."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_gguf import build_tiny_llama  # noqa: E402

LLAMA3_8B = dict(model_type="llama", hidden_size=4096, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, intermediate_size=14336,
                 vocab_size=128256, max_position_embeddings=8192, tie_word_embeddings=False)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """n_embd 256, 3 layers, 4 heads (2 KV), n_ff 768, vocab 1024, untied output."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_tied_model(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-tied.gguf", tied=True)


@pytest.fixture
def llama3_8b_config() -> dict:
    return dict(LLAMA3_8B)
