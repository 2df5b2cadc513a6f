"""TQ1_0, TQ2_0 and MXFP4 on the rows that trip their C details: MXFP4's scale exponent is
floorf(log2f(amax)), which the C library rounds up to the next integer just below a power of
two (kernels/mxfp4/exponent.py), and negative exponents of denormal blocks wrap through int;
a ternary block whose 1/d overflows gets lroundf's LONG_MIN trits."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_cases import mismatch
from quantdesk import kernels
from quantdesk.kernels import oracle


def _just_below_powers_of_two() -> np.ndarray:
    vals = []
    for k in range(-140, 128, 3):
        p = np.float32(np.ldexp(1.0, k))
        vals += [np.uint32(p.view(np.uint32) - i).view(np.float32) for i in (1, 3, 10, 30, 60)]
    vals += [np.float32(3.4028235e38), np.float32(1e-45), np.float32(0.75)]
    rows = np.zeros((len(vals), 32), np.float32)
    rows[:, 3] = vals
    rows[:, 17] = -np.array(vals, np.float32) / 3
    return rows


def _denormal_and_zero_blocks(n: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((4, n)).astype(np.float32)
    rows[0] *= np.float32(1e-41)
    rows[1] = 0.0
    rows[2, : n // 2] = -0.0
    rows[3, ::7] = 1e30
    return rows


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_mxfp4_scale_exponent_matches_ggml_below_powers_of_two(backend):
    rows = _just_below_powers_of_two()
    msg = mismatch(kernels.quantize(rows, "MXFP4", backend=backend), oracle.ggml_quantize(rows, "MXFP4"),
                   17, f"MXFP4 {backend}")
    assert msg is None, msg


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("qtype", ["TQ1_0", "TQ2_0", "MXFP4"])
def test_denormal_and_zero_blocks_match_ggml(qtype, backend):
    rows = _denormal_and_zero_blocks(512)
    ours = kernels.quantize(rows, qtype, backend=backend)
    msg = mismatch(ours, oracle.ggml_quantize(rows, qtype), kernels.get_format(qtype).type_size,
                   f"{qtype} {backend}")
    assert msg is None, msg


def test_mxfp4_ties_between_values_and_signs_match_ggml():
    """The CPU kernel searches |v| among the 8 non-negative values and takes the sign after
    (kernels/mxfp4/cpu.py): exact values, midpoints (ties: the first index wins), signed zeros
    and tiny values of both signs, at several scales, byte for byte against ggml."""
    k = np.array([0, 1, 2, 3, 4, 6, 8, 12], np.float32)
    mids = (k[1:] + k[:-1]) / 2
    base = np.concatenate([k, mids, [-0.0, 1e-30, 0.25, 0.5]]).astype(np.float32)
    vals = np.concatenate([base, -base])                     # 46 values per scale
    rows = []
    for scale in (1.0, 2.0 ** -20, 2.0 ** 30, 0.75, 3.0):
        v = np.resize(vals, 64 * 32).astype(np.float32) * np.float32(scale)
        v[::32] = np.float32(12 * scale)                     # every block's amax: d = scale
        rows.append(v)
    rows = np.stack(rows)
    for backend in ("reference", "cpu"):
        msg = mismatch(kernels.quantize(rows, "MXFP4", backend=backend),
                       oracle.ggml_quantize(rows, "MXFP4"), 17, f"MXFP4 {backend}")
        assert msg is None, msg


def test_ternary_ceiling_division_in_float_is_exact_for_every_byte():
    from quantdesk.kernels.ternary.cpu import _packed
    q = np.arange(256)
    assert [_packed(np.int32(v)) for v in q] == list(((q * 256 + 242) // 243) & 0xFF)
