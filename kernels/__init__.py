"""Weight-quantization kernels, byte-identical to llama.cpp's quantizer.

    quantize(rows, "Q4_K", backend="auto", imatrix=None, threads=None) -> uint8 (n_rows, row_bytes)
    dequantize(data, "Q4_K", n_per_row) -> float32 (n_rows, n_per_row)
    row_bytes("Q4_K", 4096) -> 2304

Each type has three implementations (numpy reference = the spec, numba CPU, numba-cuda), found
through `registry`. No Qt and no heavy imports at module import time.

Map of the package:
- API and plumbing: formats (block layouts), registry (type x backend -> kernel), oracle
  (llama.cpp's ggml_quantize_chunk through ctypes, for tests and benchmarks).
- numpy reference (the spec): common (rounding, fp16, C-order sums, make_qx/make_q3 searches),
  kquant_search (make_qkx2/qkx3, make_qp_quants, K-quant scale packing), legacy (Q8_0..Q5_1),
  q2_k, q3_k, q4_k, q5_k, q6_k.
- one source for numba CPU and CUDA (njit here; loaded again as CUDA device code by
  cuda_common.load_cuda_twin): ops (scalar ggml building blocks), kquant_ops (make_qp_quants),
  legacy_ops, q3_k_ops, q6_k_ops (per-block code).
- numba CPU: cpu_bits (float bit intrinsics), cpu_common (threads, row statistics, the
  super-block-minor lane loader), vector_width (512-bit SIMD on AVX-512 CPUs),
  qx_lanes / q3_lanes / kquant_cpu_ops (the searches across many sub-blocks at once, SIMD),
  legacy_lanes, legacy_cpu, q3_k_cpu, q6_k_cpu, kquant_cpu (Q2_K/Q4_K/Q5_K).
- numba-cuda: cuda_common (twin loader, launches), kquant_cuda_ops (make_qkx2/qkx3 per thread),
  legacy_cuda, q36_k_cuda (Q3_K/Q6_K), kquant_cuda (Q2_K/Q4_K/Q5_K).
- cache_guard: clears numba's cache when any source here changes (numba only checks the file
  that defines a kernel, not the ones it inlines).
"""
from __future__ import annotations

import numpy as np

from .formats import FORMATS, QuantFormat, get_format, row_bytes

__all__ = ["quantize", "dequantize", "row_bytes", "FORMATS", "QuantFormat", "get_format",
           "cuda_usable", "QUANT_TYPES"]

QUANT_TYPES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
_FLOAT_TYPES = ("F32", "F16", "BF16")


def cuda_usable() -> bool:
    """True when numba-cuda sees a real GPU (the simulator does not count)."""
    try:
        from numba import config, cuda
        return bool(cuda.is_available()) and not config.ENABLE_CUDASIM
    except Exception:  # no driver, no toolkit, broken install: no GPU for us
        return False


def nonfinite_error(rows: np.ndarray) -> ValueError:
    """The one-line error for rows holding NaN or Inf, naming the first such row."""
    bad = int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
    return ValueError(f"row {bad} contains NaN or Inf; cannot quantize")


def _check_rows(rows: np.ndarray, fmt: QuantFormat, imatrix: np.ndarray | None,
                values: bool = True) -> None:
    """Shape, dtype, block multiple, imatrix; and NaN/Inf in the rows when `values` (the CPU
    kernels check those while they load their batches: one pass over the weights, not two)."""
    if not isinstance(rows, np.ndarray) or rows.ndim != 2:
        raise ValueError("rows must be a 2-D numpy array (n_rows, n_per_row)")
    if rows.dtype != np.float32 or not rows.flags.c_contiguous:
        raise ValueError("rows must be C-contiguous float32")
    n_per_row = rows.shape[1]
    if n_per_row % fmt.block_size:
        raise ValueError(f"{fmt.name} needs rows that are a multiple of {fmt.block_size} "
                         f"weights; got {n_per_row}")
    if values and not np.isfinite(rows).all():
        raise nonfinite_error(rows)
    if imatrix is not None:
        if imatrix.dtype != np.float32 or imatrix.shape != (n_per_row,):
            raise ValueError(f"imatrix must be float32 of shape ({n_per_row},)")
        if not np.isfinite(imatrix).all():
            raise ValueError("imatrix contains NaN or Inf")


def _float_passthrough(rows: np.ndarray, qtype: str) -> np.ndarray:
    if qtype == "F32":
        out = rows
    elif qtype == "F16":
        with np.errstate(over="ignore"):   # beyond fp16 range becomes inf, as in ggml
            out = rows.astype(np.float16)
    else:  # BF16, rounded to nearest even as ggml_fp32_to_bf16 does (NaN never reaches here)
        bits = rows.view(np.uint32).astype(np.uint64)
        out = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.ascontiguousarray(out).view(np.uint8).reshape(rows.shape[0], -1)


def quantize(rows: np.ndarray, qtype: str, *, backend: str = "auto",
             imatrix: np.ndarray | None = None, threads: int | None = None) -> np.ndarray:
    """Quantize float32 rows to GGML type `qtype`; returns uint8 (n_rows, row_bytes)."""
    fmt = get_format(qtype)
    if backend == "auto" and fmt.name not in _FLOAT_TYPES:
        backend = "cuda" if cuda_usable() else "cpu"
    _check_rows(rows, fmt, imatrix, values=backend != "cpu" or fmt.name in _FLOAT_TYPES)
    if fmt.name in _FLOAT_TYPES:
        return _float_passthrough(rows, fmt.name)
    from .registry import get_kernel
    out = get_kernel(fmt.name, backend)(rows, imatrix, threads)
    assert out.shape == (rows.shape[0], row_bytes(fmt.name, rows.shape[1])) and out.dtype == np.uint8
    return out


def dequantize(data: np.ndarray, qtype: str, n_per_row: int) -> np.ndarray:
    """Dequantize GGML-typed bytes to float32 (n_rows, n_per_row), through gguf-py."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize
    fmt = get_format(qtype)
    data = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, row_bytes(fmt.name, n_per_row))
    out = gguf_dequantize(data, GGMLQuantizationType[fmt.name])
    return np.asarray(out, dtype=np.float32).reshape(-1, n_per_row)
