"""IQ2_XXS, IQ2_XS and IQ2_S beyond the shared identity tests: the grids we carry are the ones
gguf-py decodes with, the tables grid.py builds are ggml's (every grid point maps to itself,
every off-grid lookup lists exactly the nearest distance shells in qsort's order), ksigns is
ggml's, and the K-quant trap rows give llama.cpp's bytes on the reference and CPU backends."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_cases import kquant_imatrix, kquant_rows, mismatch
from quantdesk import kernels
from quantdesk.kernels import oracle
from quantdesk.kernels.iq2 import grid

QTYPES = ("IQ2_XXS", "IQ2_XS", "IQ2_S")


@pytest.mark.parametrize("qtype", QTYPES)
def test_carried_grid_is_the_one_gguf_py_decodes_with(qtype):
    from gguf import quants
    cls = getattr(quants, qtype)
    cls.init_grid()
    levels = {v: i for i, v in enumerate(cls.grid_map)}
    theirs = np.vectorize(levels.get)(np.asarray(cls.grid).reshape(cls.grid_shape))
    ours = (grid.tables(qtype).points.reshape(-1, 8).astype(int) - 1) // 2
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("qtype", QTYPES)
def test_tables_are_ggmls_kmap_and_neighbour_shells(qtype):
    t = grid.tables(qtype)
    pts = t.points.reshape(-1, 8).astype(np.int64)
    weights = 1 << (2 * np.arange(8))
    u_of_point = (((pts - 1) // 2) * weights).sum(axis=1)
    np.testing.assert_array_equal(t.kmap[u_of_point], np.arange(len(pts)))
    nwant = grid.GRIDS[qtype][1]
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 3, (400, 8))
    for l in levels:                              # brute force: the first nwant shells, (d2, index)
        u = int((l * weights).sum())
        if t.kmap[u] >= 0:
            continue
        off = -t.kmap[u] - 1
        listed = t.neighbours[off + 1:off + 1 + t.neighbours[off]].astype(np.int64)
        d2 = ((pts - (2 * l + 1)) ** 2).sum(axis=1)
        want = sorted((d, j) for j, d in enumerate(d2) if d in np.unique(d2)[:nwant])
        assert listed.tolist() == [j for _, j in want]
        n = len(listed)                           # the slab holds the same points, coordinate-major
        slab = t.slab[8 * (off + 1):8 * (off + 1) + 8 * n].reshape(8, n)
        np.testing.assert_array_equal(slab.T, pts[listed])
    from quantdesk.kernels.iq2.block_ops import MAX_LIST
    assert t.max_neighbours <= MAX_LIST           # the kernels' distance scratch


def test_ksigns_and_kmask_are_ggmls():
    from gguf import quants
    np.testing.assert_array_equal(grid.KSIGNS, np.frombuffer(quants.IQ2_XXS.ksigns, np.uint8))
    assert grid.KMASK.tolist() == [1, 2, 4, 8, 16, 32, 64, 128]


# IQ2_XXS and IQ2_XS without an imatrix are refused (test_kernels_api, test_oracle_identity)
CASES = [(q, w) for q in QTYPES for w in ("plain", "imatrix") if w == "imatrix" or q == "IQ2_S"]


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("qtype,weighted", CASES)
def test_kquant_trap_rows_match_ggml(qtype, backend, weighted):
    rows = kquant_rows(512)
    im = kquant_imatrix(512) if weighted == "imatrix" else None
    ours = kernels.quantize(rows, qtype, backend=backend, imatrix=im, threads=2)
    msg = mismatch(ours, oracle.ggml_quantize(rows, qtype, im), kernels.get_format(qtype).type_size,
                   f"{qtype} {backend}")
    assert msg is None, msg


@pytest.mark.parametrize("qtype", QTYPES)
def test_imatrix_changes_the_bytes(qtype):
    rows = kquant_rows(512)
    a = kernels.quantize(rows, qtype, backend="cpu", imatrix=np.ones(512, np.float32))
    b = kernels.quantize(rows, qtype, backend="cpu", imatrix=kquant_imatrix(512))
    assert not np.array_equal(a, b)
