"""Q2_K, Q4_K and Q5_K produce llama.cpp's bytes (ggml_quantize_chunk through ctypes) with every
backend: the numpy reference, the numba CPU kernel, and the CUDA kernel (numba's simulator here;
the real GPU when one is present), with and without an imatrix."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kquant_b_cases import QTYPES, first_mismatch, make_imatrix, make_rows
from quantdesk import kernels
from quantdesk.kernels import oracle

HERE = Path(__file__).resolve().parent
N_PER_ROW = 512


@pytest.fixture(scope="module")
def rows():
    return make_rows(N_PER_ROW)


@pytest.fixture(scope="module")
def imatrix():
    return make_imatrix(N_PER_ROW)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("qtype", QTYPES)
def test_bytes_match_ggml(rows, imatrix, qtype, backend, weighted):
    im = imatrix if weighted else None
    ours = kernels.quantize(rows, qtype, backend=backend, imatrix=im, threads=2)
    msg = first_mismatch(ours, oracle.ggml_quantize(rows, qtype, im), qtype, N_PER_ROW)
    assert msg is None, msg


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


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("kquant_b_sim") / "bytes.npz"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(HERE / "kquant_b_sim_child.py"), str(out),
                           str(N_PER_ROW)], env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = np.load(out)
    return {k: data[k] for k in data.files}


@pytest.mark.slow
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("qtype", QTYPES)
def test_simulated_cuda_bytes_match_ggml(simulated, qtype, weighted):
    im = simulated["imatrix"] if weighted else None
    theirs = oracle.ggml_quantize(simulated["rows"], qtype, im)
    ours = simulated[f"{qtype}-{'imatrix' if weighted else 'plain'}"]
    msg = first_mismatch(ours, theirs, qtype, N_PER_ROW)
    assert msg is None, msg


@pytest.mark.gpu
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("qtype", QTYPES)
def test_gpu_bytes_match_ggml(qtype, weighted):
    if not kernels.cuda_usable():
        pytest.skip("no CUDA GPU")
    rng = np.random.default_rng(7)
    x = np.concatenate([make_rows(4096), rng.standard_normal((500, 4096)).astype(np.float32)])
    im = make_imatrix(4096) if weighted else None
    ours = kernels.quantize(x, qtype, backend="cuda", imatrix=im)
    msg = first_mismatch(ours, oracle.ggml_quantize(x, qtype, im, threads=os.cpu_count() or 1),
                         qtype, 4096)
    assert msg is None, msg
