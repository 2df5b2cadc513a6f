"""The set-up builds the llama-cpp-python the project pins, with the RPC backend, and without
llama.cpp's AMX matrix multiply where a native build would compile it in (it crashes)."""
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
    assert dev.cmake_args(has_amx=False) == "-DGGML_CUDA=on -DGGML_RPC=on"
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_RPC=on")
    assert dev.cmake_args(has_amx=False) == "-DGGML_RPC=on"


def test_a_native_build_on_an_amx_cpu_leaves_amx_out(monkeypatch, tmp_path):
    dev = _dev_module()
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    assert dev.cmake_args(has_amx=True) == ("-DGGML_RPC=on -DCMAKE_C_FLAGS=-mno-amx-int8 "
                                            "-DCMAKE_CXX_FLAGS=-mno-amx-int8")
    # the user's own compiler flags, or a portable build, are left as they are
    monkeypatch.setenv("CMAKE_ARGS", "-DCMAKE_CXX_FLAGS=-O3")
    assert dev.cmake_args(has_amx=True) == "-DCMAKE_CXX_FLAGS=-O3 -DGGML_RPC=on"
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_NATIVE=OFF")
    assert dev.cmake_args(has_amx=True) == "-DGGML_NATIVE=OFF -DGGML_RPC=on"
    # /proc/cpuinfo's flags line decides
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n")
    assert dev.cpu_has_amx(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    assert not dev.cpu_has_amx(info)
    assert not dev.cpu_has_amx(tmp_path / "missing")


def test_the_installed_llama_cpp_has_no_amx_matmul():
    """The build the tests run: on a CPU with AMX a native build used to compile in the AMX
    matrix multiply, and every reply then crashed the engine host (SIGSEGV)."""
    import llama_cpp
    info = llama_cpp.llama_print_system_info().decode()
    assert "CPU" in info
    assert "AMX_INT8 = 1" not in info, info


def test_every_installer_builds_llama_cpp_with_rpc():
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    flavours = re.findall(r'cmake_args: "([^"]*)"', workflow)
    assert len(flavours) == 5 and all("-DGGML_RPC=on" in args for args in flavours)
