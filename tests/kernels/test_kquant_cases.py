"""Q2_K, Q4_K and Q5_K on the K-quant trap rows of kernel_cases.KQUANT_CASES (numpy reference and
numba CPU against ggml_quantize_chunk, with and without imatrix; the simulated CUDA kernels are
checked on the same rows in test_cuda_simulator.py), plus checks that the imatrix is really used,
that dequantized rows come back close, and, on a machine with a GPU, full-size CUDA identity."""
from __future__ import annotations

import os

import numpy as np
import pytest

from kernel_cases import KQUANT_CASES, kquant_imatrix, kquant_rows, mismatch
from quantdesk import kernels
from quantdesk.kernels import oracle

QTYPES = ("Q4_K", "Q5_K", "Q2_K")
N_PER_ROW = 512


def _check(ours, theirs, qtype, what, n_per_row=N_PER_ROW):
    msg = mismatch(ours, theirs, kernels.get_format(qtype).type_size, f"{qtype} {what}")
    if msg is not None:
        row = int(msg.split("first is block ")[1].split()[0]) // (n_per_row // 256)
        case = KQUANT_CASES[row] if row < len(KQUANT_CASES) else "extra rows"
        msg += f"\n  (row {row}: case {case!r})"
    assert msg is None, msg


@pytest.fixture(scope="module")
def rows():
    return kquant_rows(N_PER_ROW)


@pytest.fixture(scope="module")
def imatrix():
    return kquant_imatrix(N_PER_ROW)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("qtype", QTYPES)
def test_bytes_match_ggml(rows, imatrix, qtype, backend, weighted):
    im = imatrix if weighted else None
    ours = kernels.quantize(rows, qtype, backend=backend, imatrix=im, threads=2)
    _check(ours, oracle.ggml_quantize(rows, qtype, im), qtype, backend)


@pytest.mark.parametrize("qtype", QTYPES)
def test_imatrix_changes_the_bytes(rows, imatrix, qtype):
    """The imatrix path really is a different search (guards against ignoring the argument)."""
    plain = kernels.quantize(rows, qtype, backend="cpu")
    weighted = kernels.quantize(rows, qtype, backend="cpu", imatrix=imatrix)
    assert not np.array_equal(plain, weighted)


@pytest.mark.parametrize("qtype", QTYPES)
def test_dequantized_error_is_small(rows, qtype):
    """Round trip through gguf-py's dequantizer: normal rows come back close to the input."""
    x = rows[:1]   # the "normal" case
    back = kernels.dequantize(kernels.quantize(x, qtype, backend="cpu"), qtype, N_PER_ROW)
    rel = np.sqrt(np.mean((back - x) ** 2) / np.mean(x ** 2))
    assert rel < {"Q5_K": 0.05, "Q4_K": 0.1, "Q2_K": 0.45}[qtype]


@pytest.mark.gpu
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("qtype", QTYPES)
def test_gpu_bytes_match_ggml(qtype, weighted):
    if not kernels.cuda_usable():
        pytest.skip("no CUDA GPU")
    rng = np.random.default_rng(7)
    x = np.concatenate([kquant_rows(4096), rng.standard_normal((500, 4096)).astype(np.float32)])
    im = kquant_imatrix(4096) if weighted else None
    ours = kernels.quantize(x, qtype, backend="cuda", imatrix=im)
    _check(ours, oracle.ggml_quantize(x, qtype, im, threads=os.cpu_count() or 1), qtype,
           "cuda", 4096)
