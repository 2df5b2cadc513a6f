"""numba-cuda plumbing shared by the families' cuda.py kernel modules.

`load_cuda_twin("legacy.block_ops")` loads kernels/legacy/block_ops.py a second time as
`quantdesk.kernels.legacy.block_ops_cuda`, so its functions become CUDA device functions (see
shared/ops.jit_for): the CPU and GPU kernels run one source. The simulator
(NUMBA_ENABLE_CUDASIM=1) must be chosen before numba.cuda is first imported; the tests run the
CUDA backend in a child process for that reason.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from numba import cuda

_KERNELS = Path(__file__).resolve().parent.parent     # the quantdesk.kernels package
_PACKAGE = __package__.rpartition(".")[0]             # "quantdesk.kernels"
THREADS_PER_BLOCK = 128


def load_cuda_twin(name: str):
    """The CUDA twin of the shared-source module `name` (dotted, relative to quantdesk.kernels)."""
    modname = f"{_PACKAGE}.{name}_cuda"
    if modname in sys.modules:
        return sys.modules[modname]
    path = _KERNELS.joinpath(*name.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[modname]
        raise
    return module


def launch(kernel, n_items: int, *args) -> None:
    """One thread per item (block or super-block), THREADS_PER_BLOCK threads per CUDA block."""
    grid = max(1, (n_items + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK)
    kernel[grid, THREADS_PER_BLOCK](n_items, *args)


def to_device_inputs(rows: np.ndarray, imatrix):
    """Flat device copies of the rows and of the imatrix (a 1-element dummy when None)."""
    from numba import config
    if not config.ENABLE_CUDASIM and not cuda.is_available():
        raise RuntimeError("the cuda backend needs an NVIDIA GPU with a working driver; "
                           "none was found (use backend='cpu')")
    d_x = cuda.to_device(np.ascontiguousarray(rows, dtype=np.float32).reshape(-1))
    w = np.zeros(1, np.float32) if imatrix is None else imatrix
    return d_x, cuda.to_device(np.ascontiguousarray(w, dtype=np.float32))


_seq_sumsq = load_cuda_twin("shared.ops").seq_sumsq


@cuda.jit
def _sigma_kernel(n, x, n_per_row, sig):
    r = cuda.grid(1)
    if r < n:
        sig[r] = _seq_sumsq(x, r * n_per_row, n_per_row) / np.float32(n_per_row)


def row_mean_squares(d_x, n_rows: int, n_per_row: int, needed: bool):
    """Device array of each row's sum(x*x)/n_per_row in element order (one thread per row);
    a zero array when the imatrix path does not need it."""
    if not needed:
        return cuda.to_device(np.zeros(n_rows, np.float32))
    sig = cuda.device_array(n_rows, dtype=np.float32)
    launch(_sigma_kernel, n_rows, d_x, n_per_row, sig)
    return sig


def run_per_block(kernel, fmt, rows: np.ndarray, imatrix) -> np.ndarray:
    """Launch `kernel(n_blocks, x, n_per_row, qw, use_w, out)`, one thread per block of the
    TensorType `fmt`, and return the (n_rows, row_bytes) result (Q3_K, Q6_K)."""
    n_rows, n_per_row = rows.shape
    d_x, d_w = to_device_inputs(rows, imatrix)
    n_blocks = n_rows * (n_per_row // fmt.block_size)
    d_out = cuda.device_array(n_blocks * fmt.type_size, dtype=np.uint8)
    launch(kernel, n_blocks, d_x, n_per_row, d_w, imatrix is not None, d_out)
    return d_out.copy_to_host().reshape(n_rows, -1)
