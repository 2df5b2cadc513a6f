"""Typed GPU layers: one parse for every door, one conversion to llama.cpp's integer."""
from __future__ import annotations

import argparse

import pytest

from quantdesk.core.runtime.gpu_layers import (describe_gpu_layers, llama_gpu_layers,
                                               parse_gpu_layers)


@pytest.mark.parametrize("given, parsed", [
    ("auto", "auto"), ("AUTO ", "auto"), ("all", "all"), ("-1", "all"), (-1, "all"),
    ("0", 0), (0, 0), ("12", 12), (12, 12), (12.0, 12)])
def test_parse_accepts_counts_words_and_minus_one_as_all(given, parsed):
    assert parse_gpu_layers(given) == parsed


@pytest.mark.parametrize("bad", ["-2", -5, "some", "", None, True, 1.5, "1.5"])
def test_parse_refuses_anything_else(bad):
    with pytest.raises(ValueError):
        parse_gpu_layers(bad)


def test_llama_integer_is_made_in_one_place():
    assert llama_gpu_layers("all") == -1
    assert llama_gpu_layers(0) == 0 and llama_gpu_layers(7) == 7
    with pytest.raises(ValueError, match="resolved"):
        llama_gpu_layers("auto")
    assert describe_gpu_layers(0) == "0 (CPU only)" and describe_gpu_layers("all") == "all"


def test_cli_gpu_layers_option_uses_the_same_parse():
    from quantdesk.core.cli.chat_cmd import _gpu_layers
    assert [_gpu_layers(v) for v in ("auto", "all", "-1", "3")] == ["auto", "all", "all", 3]
    with pytest.raises(argparse.ArgumentTypeError):
        _gpu_layers("-3")
