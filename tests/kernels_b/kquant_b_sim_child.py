"""Child process for test_kquants_b: runs the Q2_K/Q4_K/Q5_K CUDA kernels in numba's simulator
(NUMBA_ENABLE_CUDASIM=1 is set by the parent before numba.cuda is ever imported) and saves the
bytes to the .npz named by argv[1]."""
import sys

import numpy as np

from kquant_b_cases import QTYPES, make_imatrix, make_rows
from quantdesk.kernels import kquant_cuda, kquant_cuda_ops

assert kquant_cuda_ops.SIM, "NUMBA_ENABLE_CUDASIM=1 must be set"
n_per_row = int(sys.argv[2])
rows = make_rows(n_per_row)
imatrix = make_imatrix(n_per_row)
out = {"rows": rows, "imatrix": imatrix}
for qtype in QTYPES:
    out[f"{qtype}-plain"] = kquant_cuda.quantize(qtype, rows, None)
    out[f"{qtype}-imatrix"] = kquant_cuda.quantize(qtype, rows, imatrix)
np.savez(sys.argv[1], **out)
