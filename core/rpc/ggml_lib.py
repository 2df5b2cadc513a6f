"""ctypes bindings to the ggml backend registry and ggml-rpc in llama-cpp-python's own libraries.

Only processes that run llama.cpp import this (the engine host, a worker, a test's child): loading
the libraries initialises the backends. The functions are looked up by name in libggml (the
registry), libggml-base (devices) and libggml-rpc (built when llama-cpp-python was built with
-DGGML_RPC=on: packaging/dev.py does that); a build without it raises RpcUnavailable.
"""
from __future__ import annotations

import ctypes
import os
from functools import lru_cache
from pathlib import Path

c_p, c_size, c_str = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
DEV_CPU, DEV_GPU, DEV_IGPU, DEV_ACCEL = 0, 1, 2, 3     # enum ggml_backend_dev_type

_SIGNATURES = {
    # ggml-backend.h: devices and registries
    "ggml_backend_dev_count": (c_size, []),
    "ggml_backend_dev_get": (c_p, [c_size]),
    "ggml_backend_dev_by_type": (c_p, [ctypes.c_int]),
    "ggml_backend_dev_name": (c_str, [c_p]),
    "ggml_backend_dev_description": (c_str, [c_p]),
    "ggml_backend_dev_memory": (None, [c_p, ctypes.POINTER(c_size), ctypes.POINTER(c_size)]),
    "ggml_backend_dev_type": (ctypes.c_int, [c_p]),
    "ggml_backend_dev_backend_reg": (c_p, [c_p]),
    "ggml_backend_reg_name": (c_str, [c_p]),
    "ggml_backend_reg_by_name": (c_p, [c_str]),
    "ggml_backend_reg_dev_count": (c_size, [c_p]),
    "ggml_backend_reg_dev_get": (c_p, [c_p, c_size]),
    "ggml_backend_reg_get_proc_address": (c_p, [c_p, c_str]),
    "ggml_backend_register": (None, [c_p]),
    "ggml_backend_device_register": (None, [c_p]),
    "ggml_backend_load_all": (None, []),
    # ggml-rpc.h
    "ggml_backend_rpc_add_server": (c_p, [c_str]),
    "ggml_backend_rpc_start_server": (None, [c_str, c_str, c_size, c_size, ctypes.POINTER(c_p)]),
    "ggml_backend_rpc_get_device_memory": (None, [c_str, ctypes.c_uint32, ctypes.POINTER(c_size),
                                                  ctypes.POINTER(c_size)]),
}


class RpcUnavailable(RuntimeError):
    """This llama-cpp-python was built without the RPC backend. One line."""


def lib_dir() -> Path:
    import llama_cpp   # loads libllama and its ggml libraries first, with their own search path
    return Path(llama_cpp.__file__).parent / "lib"


def _already_loaded(folder: Path, stem: str) -> Path | None:
    """The file of `stem` libllama has loaded (Linux): a wheel stores libggml.so and
    libggml.so.0 as two copies, not a link, and ctypes opening the other copy would get a second,
    empty backend registry."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = Path(line.split(" ", 5)[-1].strip()) if "/" in line else None
        if path is not None and path.parent == folder and (
                path.name == f"lib{stem}.so" or path.name.startswith(f"lib{stem}.so.")):
            return path
    return None


def _find(folder: Path, stem: str) -> Path | None:
    loaded = _already_loaded(folder, stem)
    if loaded is not None:
        return loaded
    # the names libllama links against (its NEEDED sonames) first, then the bare ones
    for name in (f"lib{stem}.so.0", f"lib{stem}.0.dylib", f"lib{stem}.so", f"lib{stem}.dylib",
                 f"{stem}.dll", f"lib{stem}.dll"):
        if (folder / name).exists():
            return folder / name
    return None


@lru_cache(maxsize=1)
def _libraries() -> tuple:
    folder = lib_dir()
    mode = getattr(os, "RTLD_GLOBAL", 0)
    libs = []
    for stem in ("ggml", "ggml-base", "ggml-rpc"):
        path = _find(folder, stem)
        if path is not None:
            libs.append(ctypes.CDLL(str(path), mode=mode))
    return tuple(libs)


@lru_cache(maxsize=None)
def fn(name: str):
    """The C function `name` with its signature set; RpcUnavailable when no library has it."""
    restype, argtypes = _SIGNATURES[name]
    for lib in _libraries():
        try:
            f = getattr(lib, name)
        except AttributeError:
            continue
        f.restype, f.argtypes = restype, argtypes
        return f
    raise RpcUnavailable("this llama-cpp-python was built without llama.cpp's RPC backend; "
                         "set it up again with `python3 packaging/dev.py setup` "
                         "(it builds with -DGGML_RPC=on)")


def rpc_available() -> bool:
    try:
        registry = fn("ggml_backend_reg_by_name")
        return bool(registry(b"RPC")) and bool(fn("ggml_backend_rpc_add_server"))
    except (RpcUnavailable, ImportError, OSError):
        return False


def device_memory(dev) -> tuple[int, int]:
    free, total = c_size(0), c_size(0)
    fn("ggml_backend_dev_memory")(dev, ctypes.byref(free), ctypes.byref(total))
    return int(free.value), int(total.value)


def device_label(dev) -> str:
    name = fn("ggml_backend_dev_name")(dev) or b"?"
    desc = fn("ggml_backend_dev_description")(dev) or b""
    return f"{name.decode(errors='replace')} ({desc.decode(errors='replace')})"


def devices() -> list:
    count = fn("ggml_backend_dev_count")()
    return [fn("ggml_backend_dev_get")(i) for i in range(count)]


def is_rpc_device(dev) -> bool:
    reg = fn("ggml_backend_dev_backend_reg")(dev)
    name = fn("ggml_backend_reg_name")(reg) if reg else b""
    return bool(name) and name.startswith(b"RPC")
