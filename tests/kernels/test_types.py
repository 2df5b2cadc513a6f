"""The one catalogue of GGML tensor types (kernels/types.py): every gguf type with gguf's own
layout, and every type that claims a kernel family has a kernel registered for every backend
(a missing registration fails here; it is never skipped)."""
from __future__ import annotations

import numpy as np
import pytest
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from quantdesk import kernels
from quantdesk.kernels import registry, types


def test_every_gguf_type_is_catalogued_with_gguf_layout():
    for t, (block_size, type_size) in GGML_QUANT_SIZES.items():
        d = kernels.get_format(t.name)
        assert (d.name, d.ggml_type, d.block_size, d.type_size) == (t.name, int(t), block_size, type_size)
    assert set(kernels.TYPES) == {t.name for t in GGMLQuantizationType if t in GGML_QUANT_SIZES}


def test_descriptor_of_a_k_quant():
    q4k = kernels.get_format("q4_k")
    assert (q4k.ggml_type, q4k.block_size, q4k.type_size, q4k.bits_per_weight) == (12, 256, 144, 4.5)
    assert q4k.family == "k_scale_min" and q4k.backends == ("reference", "cpu", "cuda")
    assert kernels.row_bytes("Q4_K", 4096) == 2304
    assert kernels.get_format("Q8_K").backends == () and not kernels.get_format("Q8_K").writable
    assert kernels.get_format("BF16").is_float and kernels.get_format("BF16").writable


def test_quant_types_are_the_types_with_a_kernel_family():
    claimed = {name for name, t in kernels.TYPES.items() if t.family}
    assert set(kernels.QUANT_TYPES) == claimed
    assert claimed >= {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                       "IQ4_NL", "IQ4_XS"}


@pytest.mark.parametrize("backend", types.BACKENDS)
def test_every_claimed_type_has_every_backend_registered(backend):
    have = {q for q, _ in registry.available(backend)}
    claimed = {name for name, t in kernels.TYPES.items() if backend in t.backends}
    assert claimed - have == set(), f"no {backend} kernel registered for {sorted(claimed - have)}"
    assert have - claimed == set(), f"{backend} kernels the catalogue does not claim: {sorted(have - claimed)}"


def test_kernel_modules_are_one_per_family_and_backend():
    assert registry.KERNEL_MODULES == [f"quantdesk.kernels.{family}.{backend}"
                                       for family in types.KERNEL_FAMILIES
                                       for backend in types.BACKENDS]


def test_a_type_without_our_kernel_is_refused_by_name():
    with pytest.raises(ValueError, match="no kernel for Q8_K"):
        kernels.quantize(np.zeros((1, 256), np.float32), "Q8_K")
