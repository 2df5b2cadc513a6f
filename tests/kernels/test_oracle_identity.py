"""Every kernel produces llama.cpp's bytes: each type x backend (numpy reference, numba CPU) x
with/without imatrix on seeded rows of every distribution in kernel_cases, against
ggml_quantize_chunk itself. The CUDA kernels are checked in test_cuda_simulator.py. Every type
of kernels.QUANT_TYPES is checked: a missing registration fails (test_types.py says which).
Types ggml will not quantize without an imatrix (IQ1_S, ...) are refused "plain" in one line."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from kernel_cases import DISTRIBUTIONS, all_rows, make_imatrix, mismatch, needed_imatrix
from quantdesk import kernels
from quantdesk.kernels import oracle

ROWS_PER_DIST = 2
N_PER_ROW = 1024


@functools.lru_cache(maxsize=None)
def _rows() -> np.ndarray:
    return all_rows(ROWS_PER_DIST, N_PER_ROW, seed=3)


@functools.lru_cache(maxsize=None)
def _oracle(qtype: str, weighted: bool) -> np.ndarray:
    return oracle.ggml_quantize(_rows(), qtype, make_imatrix(N_PER_ROW) if weighted else None)


def _where(msg: str, qtype: str) -> str:
    """Name the distribution of the first differing block."""
    fmt = kernels.get_format(qtype)
    first = int(msg.split("first is block ")[1].split()[0])
    row = first // (N_PER_ROW // fmt.block_size)
    return f"{msg}\n  (row {row}: distribution {DISTRIBUTIONS[row // ROWS_PER_DIST]!r})"


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("qtype", kernels.QUANT_TYPES)
def test_bytes_match_ggml(qtype, backend, weighted):
    rows = _rows()
    imatrix = make_imatrix(N_PER_ROW) if weighted else None
    if imatrix is None and kernels.get_format(qtype).needs_imatrix:   # as llama.cpp does
        with pytest.raises(kernels.ImatrixRequiredError, match=f"{qtype} needs an importance matrix"):
            kernels.quantize(rows, qtype, backend=backend, threads=2)
        return
    ours = kernels.quantize(rows, qtype, backend=backend, imatrix=imatrix, threads=2)
    msg = mismatch(ours, _oracle(qtype, weighted), kernels.get_format(qtype).type_size,
                   f"{qtype} {backend} {'imatrix' if weighted else 'plain'}")
    assert msg is None, _where(msg, qtype)


@pytest.mark.parametrize("qtype", kernels.QUANT_TYPES)
def test_cpu_result_does_not_depend_on_threads(qtype):
    """Splitting the work over threads never changes a byte (one row, many blocks)."""
    rows = all_rows(1, 4096, seed=5)[:3]
    im = needed_imatrix(qtype, 4096)
    one = kernels.quantize(rows, qtype, backend="cpu", threads=1, imatrix=im)
    two = kernels.quantize(rows, qtype, backend="cpu", threads=2, imatrix=im)
    assert np.array_equal(one, two)
    assert np.array_equal(one, oracle.ggml_quantize(rows, qtype, im))
