"""Child process of test_cuda_simulator.py: runs every registered CUDA kernel under numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1 must be set before numba.cuda is first imported, hence a
separate process) on small seeded rows and saves the bytes to an .npz file.

The simulator runs each CUDA thread as Python: the scale searches (Q2_K/Q4_K/Q5_K, IQ4_NL /
IQ4_XS and IQ1_S / IQ1_M: 90 s for IQ4_NL's eight rows on an idle 2-core machine, many minutes on a busy one) get
two rows (heavy-tailed, and zeros/-0/half a super-block) instead of every distribution; their
trap rows run on the CPU and reference backends and, on a machine with a GPU, on CUDA for real.

    NUMBA_ENABLE_CUDASIM=1 python cuda_sim_child.py OUT.npz ROWS_PER_DIST N_PER_ROW
"""
from __future__ import annotations

import json
import sys
import traceback

import numpy as np

from kernel_cases import DISTRIBUTIONS, all_rows, make_imatrix

SEARCH_TYPES = ("Q4_K", "Q5_K", "Q2_K", "IQ4_NL", "IQ4_XS", "IQ3_XXS", "IQ3_S",   # the two-row set
                "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M")
KQUANT_DISTRIBUTIONS = ("student_t", "zero_blocks")


def main(out_path: str, rows_per_dist: int, n_per_row: int) -> None:
    from numba import config
    assert config.ENABLE_CUDASIM, "run with NUMBA_ENABLE_CUDASIM=1"
    from quantdesk import kernels

    rows = all_rows(rows_per_dist, n_per_row, seed=11)
    imatrix = make_imatrix(n_per_row, seed=11)
    kq_rows = np.concatenate([rows[DISTRIBUTIONS.index(d) * rows_per_dist:][:rows_per_dist]
                              for d in KQUANT_DISTRIBUTIONS])
    results, errors, refused = {}, {}, {}
    for qtype in kernels.QUANT_TYPES:     # a type without a cuda kernel lands in errors
        for weighted in (False, True):
            key = f"{qtype}-{'imatrix' if weighted else 'plain'}"
            if not weighted and kernels.get_format(qtype).needs_imatrix:
                try:                      # ggml refuses these plain: so must we
                    kernels.quantize(kq_rows, qtype, backend="cuda")
                    errors[key] = "quantized without an imatrix"
                except ValueError as e:
                    refused[key] = str(e)
                continue
            try:
                results[key] = kernels.quantize(kq_rows if qtype in SEARCH_TYPES else rows,
                                                qtype, backend="cuda",
                                                imatrix=imatrix if weighted else None)
            except Exception:
                errors[key] = traceback.format_exc(limit=3)
    np.savez(out_path, rows=rows, kq_rows=kq_rows, imatrix=imatrix,
             errors=json.dumps(errors), refused=json.dumps(refused), **results)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
