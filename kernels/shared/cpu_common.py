"""numba CPU plumbing shared by the *_cpu kernel modules: thread count and row statistics."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .ops import F, seq_sumsq


def set_threads(threads: int | None) -> None:
    """Use `threads` numba threads for the next parallel call from this thread (None: all)."""
    import numba
    n = numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(n if not threads else max(1, min(int(threads), n)))


@njit(parallel=True, cache=True, error_model="numpy")
def row_mean_squares(x, n_per_row):
    """ggml's sigma2 = sum(x*x)/n_per_row of each row, summed in element order."""
    n_rows = x.size // n_per_row
    sig = np.empty(n_rows, np.float32)
    for r in prange(n_rows):
        sig[r] = seq_sumsq(x, r * n_per_row, n_per_row) / F(n_per_row)
    return sig


FLT_MAX = np.float32(3.4028234663852886e38)


@njit(inline="always", cache=True)
def nonfinite(v):
    """True for NaN and +-Inf, branch-free (the load loops that use it stay SIMD)."""
    return not (abs(v) <= FLT_MAX)


def raise_on_nonfinite(rows: np.ndarray, flags: np.ndarray) -> None:
    """Every CPU kernel flags NaN/Inf per batch while it loads the weights; kernels.quantize
    leaves that check to them. Name the row with the API's one-line message."""
    if flags.any():
        from .. import nonfinite_error
        raise nonfinite_error(rows)


def flat(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows, dtype=np.float32).reshape(-1)


def weights_or_dummy(imatrix) -> np.ndarray:
    return np.zeros(1, np.float32) if imatrix is None else np.ascontiguousarray(imatrix, np.float32)


@njit(cache=True, error_model="numpy", boundscheck=False)
def load_batch(src, b0, n_sb, period, X):
    """The super-block-minor lane layout of a batch (q3_k_cpu.py, q6_k_cpu.py): with
    SB = X.shape[1] // 16, X[i, ib*SB + s] = src[((b0 + s) % period) * 256 + 16*ib + i] for the
    n_sb live super-blocks, 0 for the padding ones. period: the number of super-blocks in src
    (a row of the imatrix, or all of x). Returns True when a live value is NaN or Inf."""
    SB = X.shape[1] // 16
    bad = False
    for s in range(SB):
        base = ((b0 + s) % period) * 256
        for ib in range(16):
            for i in range(16):
                v = src[base + 16 * ib + i] if s < n_sb else F(0)
                X[i, ib * SB + s] = v
                bad |= nonfinite(v)
    return bad


@njit(cache=True, error_model="numpy", boundscheck=False)
def float_bytes(T, U):
    """U[...] = T[...] as uint8, where T (C-contiguous float32, same shape) holds byte values
    built in float arithmetic. One flat loop: LLVM vectorizes it, not a 2-D nest."""
    Tf = T.reshape(-1)
    Uf = U.reshape(-1)
    for j in range(Tf.size):
        Uf[j] = np.uint8(np.int32(Tf[j]))


def run_in_batches(kernel, fmt, per_batch: int, rows: np.ndarray, imatrix, threads) -> np.ndarray:
    """Run a batched CPU kernel `kernel(x, n_per_row, qw, use_w, out, nthreads, bad)` (Q3_K,
    Q6_K: `per_batch` blocks of the TensorType `fmt` per batch, bad[batch] set for NaN/Inf) and
    return its (n_rows, row_bytes) bytes."""
    from numba import get_num_threads
    set_threads(threads)
    n_rows, n_per_row = rows.shape
    out = np.empty(n_rows * (n_per_row // fmt.block_size) * fmt.type_size, np.uint8)
    bad = np.zeros((out.size // fmt.type_size + per_batch - 1) // per_batch, np.bool_)
    kernel(flat(rows), n_per_row, weights_or_dummy(imatrix), imatrix is not None, out,
           get_num_threads(), bad)
    raise_on_nonfinite(rows, bad)
    return out.reshape(n_rows, -1)
