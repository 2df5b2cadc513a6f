"""llama.cpp's own quantizer, `ggml_quantize_chunk` from the libggml-base that llama-cpp-python
ships, called through ctypes. It is the oracle our kernels are tested against and the peer our
benchmarks are measured against. ctypes releases the GIL, so a thread pool runs it in parallel.
"""
from __future__ import annotations

import ctypes
import functools
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .types import get_format, row_bytes


@functools.lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    import importlib.util
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise RuntimeError("llama-cpp-python is not installed; the ggml oracle needs it")
    libdir = Path(spec.origin).parent / "lib"
    name = {"win32": "ggml-base.dll", "darwin": "libggml-base.dylib"}.get(sys.platform,
                                                                         "libggml-base.so")
    candidates = [libdir / name, *sorted(libdir.glob("*ggml-base*"))]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise RuntimeError(f"no libggml-base in {libdir}")
    lib = ctypes.CDLL(str(path))
    f = lib.ggml_quantize_chunk
    f.restype = ctypes.c_size_t
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                  ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
    return lib


def ggml_requires_imatrix(qtype: str) -> bool:
    """ggml_quantize_requires_imatrix: ggml_quantize_chunk aborts without an imatrix."""
    return bool(_lib().ggml_quantize_requires_imatrix(get_format(qtype).ggml_type))


def _chunk(ggml_type: int, rows: np.ndarray, out: np.ndarray, imatrix: np.ndarray | None) -> None:
    _lib().ggml_quantize_chunk(
        ggml_type, rows.ctypes.data, out.ctypes.data, 0, rows.shape[0], rows.shape[1],
        None if imatrix is None else imatrix.ctypes.data)


def ggml_quantize(rows: np.ndarray, qtype: str, imatrix: np.ndarray | None = None,
                  threads: int = 1) -> np.ndarray:
    """llama.cpp's bytes for `rows` (C-contiguous float32, (n_rows, n_per_row))."""
    fmt = get_format(qtype)
    if imatrix is None and ggml_requires_imatrix(fmt.name):   # ggml would abort the process
        raise ValueError(f"ggml needs an importance matrix for {fmt.name} (it aborts without one)")
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, dtype=np.float32)
    n_rows, n_per_row = rows.shape
    out = np.zeros((n_rows, row_bytes(fmt.name, n_per_row)), dtype=np.uint8)
    if threads <= 1 or n_rows < 2:
        _chunk(fmt.ggml_type, rows, out, imatrix)
        return out
    bounds = np.linspace(0, n_rows, min(threads, n_rows) + 1).astype(int)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda i: _chunk(fmt.ggml_type, rows[bounds[i]:bounds[i + 1]],
                                       out[bounds[i]:bounds[i + 1]], imatrix),
                      range(len(bounds) - 1)))
    return out


def ggml_dequantize(data: np.ndarray, qtype: str, n_per_row: int) -> np.ndarray:
    """llama.cpp's own dequantize_row_<type> over every row of `data` (uint8, row_bytes wide)."""
    fmt = get_format(qtype)
    fn = getattr(_lib(), "dequantize_row_" + fmt.name.lower().replace("_k", "_K"))  # q4_0, q6_K, iq4_xs
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    data = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, row_bytes(fmt.name, n_per_row))
    out = np.empty((data.shape[0], n_per_row), dtype=np.float32)
    fn(data.ctypes.data, out.ctypes.data, out.size)
    return out
