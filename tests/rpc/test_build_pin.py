"""The set-up builds the llama-cpp-python the project pins, with the RPC backend."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _dev_module():
    spec = importlib.util.spec_from_file_location("quantdesk_dev", ROOT / "packaging" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dev_builds_the_pinned_llama_cpp_python_with_rpc(monkeypatch):
    dev = _dev_module()
    pins = re.findall(r'"(llama-cpp-python==[^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pins == [dev.LLAMA_CPP]
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on")
    assert dev.cmake_args() == "-DGGML_CUDA=on -DGGML_RPC=on"
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_RPC=on")
    assert dev.cmake_args() == "-DGGML_RPC=on"


def test_every_installer_builds_llama_cpp_with_rpc():
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    flavours = re.findall(r'cmake_args: "([^"]*)"', workflow)
    assert len(flavours) == 5 and all("-DGGML_RPC=on" in args for args in flavours)
