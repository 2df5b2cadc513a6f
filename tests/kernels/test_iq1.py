"""IQ1_S and IQ1_M beyond the shared identity tests: the grid tables we build are ggml's
(iq2xs_init_impl's rules), rows that trip the split search (ties in the sort, -0.0 next to
0.0, blocks whose importances are all zero, blocks at the GROUP_MAX_EPS thresholds, the K-quant
trap rows, magnitudes up to 1e30 where the sums overflow) give llama.cpp's bytes, and IQ1_S without an importance matrix is refused in one line
everywhere, as ggml_quantize_requires_imatrix says (ggml itself aborts the process)."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_cases import kquant_imatrix, kquant_rows, mismatch
from quantdesk import kernels
from quantdesk.kernels import oracle
from quantdesk.kernels.iq1.grid import KMAP_SIZE, iq1_grid_codes, iq1_tables

QTYPES = ("IQ1_S", "IQ1_M")
BACKENDS = ("reference", "cpu")


def test_grid_tables_follow_ggmls_init():
    levels, kmap, nbr = iq1_tables()
    codes = iq1_grid_codes()
    assert codes.size == 2048 and codes[:8].tolist() == [0, 2, 5, 8, 10, 17, 21, 32]
    lev = levels.reshape(-1, 8).astype(np.int64)
    assert lev.min() == 0 and lev.max() == 2
    assert np.array_equal((lev << (2 * np.arange(8))).sum(axis=1), codes)
    assert np.array_equal(kmap[codes], np.arange(2048))
    trits = np.indices((3,) * 8).reshape(8, -1).T
    patterns = (trits << (2 * np.arange(8))).sum(axis=1)
    off = patterns[kmap[patterns] < 0]
    assert off.size == 3 ** 8 - 2048 and kmap.size == KMAP_SIZE
    pos = 2 * lev + 1
    for u in off[:: 97]:                       # a spread of off-grid patterns, checked in full
        start = -int(kmap[u]) - 1
        got = nbr[start + 1:start + 1 + int(nbr[start])].astype(np.int64)
        p = 2 * ((int(u) >> (2 * np.arange(8))) & 3) + 1
        d2 = ((pos - p) ** 2).sum(axis=1)
        three = np.unique(d2)[:3]              # the three smallest distinct distances
        want = np.lexsort((np.arange(2048), d2))
        want = want[np.isin(d2[want], three)]
        assert np.array_equal(got, want), u


def _tricky_rows() -> np.ndarray:
    rng = np.random.default_rng(17)
    x = rng.standard_normal((6, 512)).astype(np.float32)
    x[0, :64] = 0.5                                   # a whole block of ties
    x[0, 64:96] = np.tile([0.25, -0.25, 0.0, -0.0], 8)
    x[1] = np.round(x[1] * 2) / 2                     # few distinct values: ties everywhere
    x[2, ::2] = -0.0
    x[2, 1::2] = 0.0
    x[2, 256:] = rng.standard_normal(256)
    x[3, :32] *= np.float32(9e-13)                    # just under / over GROUP_MAX_EPS_IQ1_S
    x[3, 32:64] = np.float32(1.1e-12) * np.sign(x[3, 32:64])
    x[3, 64:80] *= np.float32(9e-8)                   # IQ1_M's threshold 1e-7
    x[3, 80:96] = np.float32(1.2e-7)
    x[4] = np.abs(x[4])                               # one-signed rows
    x[5] = -np.abs(x[5]) * 1e3
    return np.ascontiguousarray(x)


def _huge_rows() -> np.ndarray:
    """Magnitudes where ggml's sums overflow to inf (the search then keeps its first split, or
    none): 1e9 .. 1e30 per row."""
    rng = np.random.default_rng(19)
    scales = np.array([1e9, 1e12, 1e15, 1e18, 1e20, 1e25, 1e30])[:, None]
    return np.ascontiguousarray((rng.standard_normal((7, 512)) * scales).astype(np.float32))


def _tricky_imatrix() -> np.ndarray:
    im = kquant_imatrix(512, seed=5)
    im[32:64] = 0.0                                   # a block whose weights are all zero
    im[256:264] = 0.0                                 # one group of eight
    return im


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("qtype", QTYPES)
def test_tricky_trap_and_huge_rows_match_ggml(qtype, backend):
    cases = [(_tricky_rows(), _tricky_imatrix()), (kquant_rows(512), kquant_imatrix(512)),
             (_huge_rows(), kquant_imatrix(512))]
    if qtype == "IQ1_M":                              # IQ1_M also runs without an imatrix
        cases += [(_tricky_rows(), None), (kquant_rows(512), None), (_huge_rows(), None)]
    for rows, im in cases:
        ours = kernels.quantize(rows, qtype, backend=backend, imatrix=im, threads=2)
        msg = mismatch(ours, oracle.ggml_quantize(rows, qtype, im), kernels.get_format(qtype).type_size,
                       f"{qtype} {backend} imatrix={im is not None}")
        assert msg is None, msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_iq1_s_without_imatrix_is_refused_in_one_line(backend):
    rows = kquant_rows(512)
    with pytest.raises(ValueError, match=r"^IQ1_S needs an importance matrix.*calibrate") as e:
        kernels.quantize(rows, "IQ1_S", backend=backend)
    assert "\n" not in str(e.value)
    from quantdesk.kernels.registry import get_kernel          # the kernel itself refuses too
    with pytest.raises(ValueError, match="IQ1_S needs an importance matrix"):
        get_kernel("IQ1_S", backend)(rows, None, 1)


def test_catalogue_and_oracle_agree_with_ggml_on_imatrix_requirement():
    for name, t in kernels.TYPES.items():
        assert t.needs_imatrix == oracle.ggml_requires_imatrix(name), name
    with pytest.raises(ValueError, match="ggml needs an importance matrix"):
        oracle.ggml_quantize(kquant_rows(512), "IQ1_S")       # not ggml's abort()


def test_imatrix_changes_iq1_m_bytes():
    rows = kquant_rows(512)
    plain = kernels.quantize(rows, "IQ1_M", backend="cpu")
    weighted = kernels.quantize(rows, "IQ1_M", backend="cpu", imatrix=kquant_imatrix(512))
    assert not np.array_equal(plain, weighted)


@pytest.mark.parametrize("qtype", QTYPES)
def test_negative_importances_match_ggml(qtype):
    """A negative importance makes ggml's neighbour distances negative: the CPU scan's minimum
    over float bits must still order them as floats (the most negative distance wins)."""
    rows = kquant_rows(512)
    im = kquant_imatrix(512, seed=7)
    for imx in (-im, np.where(np.arange(512) % 3 == 0, -im, im).astype(np.float32)):
        ours = kernels.quantize(rows, qtype, backend="cpu", imatrix=imx, threads=1)
        msg = mismatch(ours, oracle.ggml_quantize(rows, qtype, imx),
                       kernels.get_format(qtype).type_size, f"{qtype} negative imatrix")
        assert msg is None, msg
