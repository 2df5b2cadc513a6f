"""IQ4_NL and IQ4_XS beyond the shared identity tests: the codebook index our numba kernels pick
by counting midpoints is ggml's best_index_int8 on every float near each midpoint (and on
zeros, infinities, NaN and random floats), and the K-quant trap rows give llama.cpp's bytes."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_cases import kquant_imatrix, kquant_rows, mismatch
from quantdesk import kernels
from quantdesk.kernels import oracle
from quantdesk.kernels.iq4.codebook import IQ4NL_MIDPOINTS
from quantdesk.kernels.iq4.reference import best_index

QTYPES = ("IQ4_NL", "IQ4_XS")


def _midpoint_count(a: np.ndarray) -> np.ndarray:
    c = (a[:, None] >= IQ4NL_MIDPOINTS).sum(axis=1)
    return np.where(np.isnan(a), 15, c)


def test_midpoint_count_is_ggmls_best_index_near_every_midpoint():
    bits = IQ4NL_MIDPOINTS.view(np.int32).astype(np.int64)
    near = []
    for b in bits:                           # 2**16 floats either side of each midpoint
        k = np.arange(-(1 << 16), 1 << 16)
        signed = np.where(b < 0, -(b & 0x7FFFFFFF), b)   # walk through -0/+0 correctly
        v = signed + k
        near.append(np.where(v < 0, (-v) | (1 << 31), v).astype(np.uint32).view(np.float32))
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3e38, -3e38,
                        -127, -126.99999, 113, 113.00001], np.float32)
    a = np.concatenate(near + [special, rng.uniform(-300, 300, 1 << 18).astype(np.float32),
                               rng.integers(0, 1 << 32, 1 << 18, dtype=np.uint64)
                               .astype(np.uint32).view(np.float32)])
    np.testing.assert_array_equal(_midpoint_count(a), best_index(a))


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("qtype", QTYPES)
def test_kquant_trap_rows_match_ggml(qtype, backend, weighted):
    rows = kquant_rows(512)
    im = kquant_imatrix(512) if weighted else None
    ours = kernels.quantize(rows, qtype, backend=backend, imatrix=im, threads=2)
    msg = mismatch(ours, oracle.ggml_quantize(rows, qtype, im), kernels.get_format(qtype).type_size,
                   f"{qtype} {backend}")
    assert msg is None, msg


@pytest.mark.parametrize("qtype", QTYPES)
def test_imatrix_changes_the_bytes(qtype):
    rows = kquant_rows(512)
    plain = kernels.quantize(rows, qtype, backend="cpu")
    weighted = kernels.quantize(rows, qtype, backend="cpu", imatrix=kquant_imatrix(512))
    assert not np.array_equal(plain, weighted)
