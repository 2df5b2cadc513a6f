"""One registry of quantization kernels keyed by (GGML type name, backend).

A kernel is `fn(rows, imatrix, threads) -> np.ndarray[uint8] of shape (n_rows, row_bytes)`, where
`rows` is validated C-contiguous float32 (n_rows, n_per_row) with n_per_row a multiple of the
block size, and `imatrix` is None or float32 (n_per_row,). Kernel modules register themselves at
import; `KERNEL_MODULES` lists them so importing stays lazy (numba compiles on first use): for
every kernel family of the catalogue (types.KERNEL_FAMILIES), its reference, cpu and cuda module.
"""
from __future__ import annotations

import importlib
from typing import Callable

import numpy as np

from .types import BACKENDS, KERNEL_FAMILIES

Kernel = Callable[[np.ndarray, "np.ndarray | None", "int | None"], np.ndarray]

_KERNELS: dict[tuple[str, str], Kernel] = {}

# Modules that call `register` for their family's types: kernels/<family>/<backend>.py.
KERNEL_MODULES: list[str] = [f"{__package__}.{family}.{backend}"
                             for family in KERNEL_FAMILIES for backend in BACKENDS]

_loaded: set[str] = set()


def register(qtype: str, backend: str) -> Callable[[Kernel], Kernel]:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")

    def deco(fn: Kernel) -> Kernel:
        _KERNELS[(qtype, backend)] = fn
        return fn

    return deco


def _load_all() -> None:
    if not _loaded:
        from .shared.vector_width import prefer_512_bit
        prefer_512_bit()        # before the first kernel module makes numba build its target
    for name in KERNEL_MODULES:
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)


def get_kernel(qtype: str, backend: str) -> Kernel:
    _load_all()
    try:
        return _KERNELS[(qtype, backend)]
    except KeyError:
        raise ValueError(f"no {backend} kernel for {qtype}") from None


def available(backend: str | None = None) -> list[tuple[str, str]]:
    _load_all()
    return sorted(k for k in _KERNELS if backend is None or k[1] == backend)
