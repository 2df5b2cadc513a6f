"""Weight-quantization kernels, byte-identical to llama.cpp's quantizer.

    quantize(rows, "Q4_K", backend="auto", imatrix=None, threads=None) -> uint8 (n_rows, row_bytes)
    dequantize(data, "Q4_K", n_per_row) -> float32 (n_rows, n_per_row)
    row_bytes("Q4_K", 4096) -> 2304

A tensor's rows go: quantize() -> types.get_format (the catalogue: layout from gguf-py, our
kernel family) -> row checks -> registry.get_kernel(type, backend) -> the family's cpu.py or
cuda.py kernel (or reference.py, the numpy spec) -> uint8 blocks, byte-identical to llama.cpp.
No Qt and no heavy imports at module import time.

Map of the package:
- types: the one catalogue of GGML tensor types (every gguf GGMLQuantizationType: ggml id, block
  size, type size, bits per weight; which kernel family of ours writes it). registry: (type,
  backend) -> kernel, loading <family>/{reference,cpu,cuda}.py. oracle: llama.cpp's
  ggml_quantize_chunk through ctypes (tests and benchmarks).
- one sub-package per type family, each with reference.py (numpy, the spec), cpu.py (numba
  CPU), cuda.py (numba-cuda) and the per-block code both run (*_ops.py, loaded again as CUDA
  device code by shared/cuda_common.load_cuda_twin):
  legacy/ (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; block_ops, cpu_lanes),
  k_scale_min/ (Q2_K, Q4_K, Q5_K: a scale and a min per sub-block; superblock_ops, cuda_search),
  q3_k/ (Q3_K; block_ops, cpu_lanes), q6_k/ (Q6_K; block_ops),
  iq4/ (IQ4_NL, IQ4_XS: the non-linear codebook; codebook, block_ops),
  iq3/ (IQ3_XXS, IQ3_S: 3-bit grids; grid (data + ggml's map/neighbour tables), block_ops),
  ternary/ (TQ1_0, TQ2_0; block_ops), mxfp4/ (MXFP4; exponent: ggml's log2f floor, block_ops),
  iq1/ (IQ1_S, IQ1_M; grid: gguf-py's grid and ggml's kmap/neighbour tables built once,
  block_ops, superblock_ops),
  iq2/ (IQ2_XXS, IQ2_XS, IQ2_S: E8-lattice grids; grid_data, grid: kmap/neighbour tables,
  block_ops).
- shared/: the building blocks of all families (rounding, fp16, ggml's searches as numpy spec and
  as numba code, CPU lane searches and threads, CUDA plumbing, SIMD width, numba cache guard).
"""
from __future__ import annotations

import numpy as np

from .types import (FORMATS, QUANT_TYPES, TYPES, QuantFormat, TensorType, get_format,
                    row_bytes)

__all__ = ["quantize", "dequantize", "row_bytes", "ImatrixRequiredError", "TYPES", "TensorType", "get_format",
           "cuda_usable", "QUANT_TYPES", "FORMATS", "QuantFormat"]


class ImatrixRequiredError(ValueError):
    """The type needs an importance matrix (as in llama.cpp) and none was given."""

    def __init__(self, qtype: str):
        super().__init__(f"{qtype} needs an importance matrix, as in llama.cpp; calibrate one on "
                         f"your text first (quantdesk imatrix) and quantize with it")
        self.qtype = qtype


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


def _check_rows(rows: np.ndarray, fmt: TensorType, imatrix: np.ndarray | None,
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
    if not fmt.writable:
        raise ValueError(f"Quantdesk has no kernel for {fmt.name}")
    if fmt.needs_imatrix and imatrix is None:
        raise ImatrixRequiredError(fmt.name)
    if backend == "auto" and not fmt.is_float:
        backend = "cuda" if cuda_usable() else "cpu"
    _check_rows(rows, fmt, imatrix, values=backend != "cpu" or fmt.is_float)
    if fmt.is_float:
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
