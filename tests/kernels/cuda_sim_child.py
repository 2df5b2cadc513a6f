"""Child process of test_cuda_simulator.py: runs every registered CUDA kernel under numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1 must be set before numba.cuda is first imported, hence a
separate process) on small seeded rows (every distribution, and the K-quant trap rows for
Q2_K/Q4_K/Q5_K) and saves the bytes to an .npz file.

    NUMBA_ENABLE_CUDASIM=1 python cuda_sim_child.py OUT.npz ROWS_PER_DIST N_PER_ROW
"""
from __future__ import annotations

import json
import sys
import traceback

import numpy as np

from kernel_cases import all_rows, kquant_imatrix, kquant_rows, make_imatrix

KQUANT_TYPES = ("Q4_K", "Q5_K", "Q2_K")


def main(out_path: str, rows_per_dist: int, n_per_row: int) -> None:
    from numba import config
    assert config.ENABLE_CUDASIM, "run with NUMBA_ENABLE_CUDASIM=1"
    from quantdesk import kernels
    from quantdesk.kernels import registry

    rows = all_rows(rows_per_dist, n_per_row, seed=11)
    imatrix = make_imatrix(n_per_row, seed=11)
    results, errors = {}, {}
    for qtype in kernels.QUANT_TYPES:
        if (qtype, "cuda") not in registry.available("cuda"):
            continue
        for weighted in (False, True):
            key = f"{qtype}-{'imatrix' if weighted else 'plain'}"
            try:
                results[key] = kernels.quantize(rows, qtype, backend="cuda",
                                                imatrix=imatrix if weighted else None)
            except Exception:
                errors[key] = traceback.format_exc(limit=3)
    krows, kimatrix = kquant_rows(512), kquant_imatrix(512)    # the K-quant trap rows
    for qtype in KQUANT_TYPES:
        for weighted in (False, True):
            key = f"kq-{qtype}-{'imatrix' if weighted else 'plain'}"
            try:
                results[key] = kernels.quantize(krows, qtype, backend="cuda",
                                                imatrix=kimatrix if weighted else None)
            except Exception:
                errors[key] = traceback.format_exc(limit=3)
    np.savez(out_path, rows=rows, imatrix=imatrix, krows=krows, kimatrix=kimatrix,
             errors=json.dumps(errors), **results)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
