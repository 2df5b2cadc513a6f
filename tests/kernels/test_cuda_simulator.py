"""The CUDA kernels produce llama.cpp's bytes, run through numba's CUDA simulator on small rows
(every distribution of kernel_cases, with and without imatrix; two of them for the types whose
scale searches are slow as simulated Python threads, cuda_sim_child.SEARCH_TYPES).
The simulator has to be chosen before
numba.cuda is imported, so one child process quantizes everything once per session.
On a machine with a GPU, test_kquant_cases.py's `gpu` tests run the K-quant kernels for real on
full-size rows including the trap rows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cuda_sim_child import SEARCH_TYPES
from kernel_cases import mismatch
from quantdesk import kernels
from quantdesk.kernels import oracle

HERE = Path(__file__).resolve().parent
ROWS_PER_DIST, N_PER_ROW = 1, 256
# The simulator child runs once for the module. With the i-quant families it took ~21 min in a
# fresh clone on the 2-core machine (numba's simulator runs each CUDA thread as a Python thread,
# and a cold clone compiles nothing ahead); the fixture's time counts against its first test.
pytestmark = pytest.mark.timeout(3000)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("cudasim") / "bytes.npz"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(HERE / "cuda_sim_child.py"), str(out),
                           str(ROWS_PER_DIST), str(N_PER_ROW)],
                          env=env, capture_output=True, text=True, timeout=2900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = np.load(out)
    return {k: data[k] for k in data.files} | {"errors": json.loads(str(data["errors"])),
                                                "refused": json.loads(str(data["refused"]))}


@pytest.mark.slow
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("qtype", kernels.QUANT_TYPES)
def test_simulated_cuda_bytes_match_ggml(simulated, qtype, weighted):
    key = f"{qtype}-{'imatrix' if weighted else 'plain'}"
    assert key not in simulated["errors"], simulated["errors"].get(key)
    if not weighted and kernels.get_format(qtype).needs_imatrix:     # as ggml: refused
        assert simulated["refused"][key].startswith(f"{qtype} needs an importance matrix")
        return
    assert key in simulated, f"no cuda kernel registered for {qtype}"
    imatrix = simulated["imatrix"] if weighted else None
    rows = simulated["kq_rows"] if qtype in SEARCH_TYPES else simulated["rows"]
    theirs = oracle.ggml_quantize(rows, qtype, imatrix)
    msg = mismatch(simulated[key], theirs, kernels.get_format(qtype).type_size, f"{qtype} cuda {key}")
    assert msg is None, msg
