"""The public entry points around the kernels: input validation with one clear message, the
float pass-through types against numpy/gguf-py, and dequantize against llama.cpp's own
dequantize_row_* (and close to the input it came from)."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_cases import all_rows, make_rows, needed_imatrix
from quantdesk import kernels
from quantdesk.kernels import oracle


def test_nan_or_inf_is_rejected_naming_the_row():
    rows = make_rows("normal", 4, 256)
    rows[2, 17] = np.nan
    with pytest.raises(ValueError, match=r"row 2 contains NaN or Inf"):
        kernels.quantize(rows, "Q4_0", backend="reference")
    with pytest.raises(ValueError, match=r"row 2 contains NaN or Inf"):
        kernels.quantize(rows, "F16")


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("qtype", kernels.QUANT_TYPES)
def test_cpu_kernels_find_nan_or_inf_as_they_load(qtype, weighted):
    """kernels.quantize leaves the NaN/Inf scan of the CPU backend to the kernels (one pass over
    the weights, not two): each must flag any batch, including one that is not the first."""
    rows = make_rows("normal", 40, 512)
    imatrix = np.ones(512, np.float32) if weighted else needed_imatrix(qtype, 512)
    for row, col, value in [(37, 511, -np.inf), (0, 0, np.nan), (19, 300, np.inf)]:
        bad = rows.copy()
        bad[row, col] = value
        with pytest.raises(ValueError, match=fr"row {row} contains NaN or Inf"):
            kernels.quantize(bad, qtype, backend="cpu", imatrix=imatrix, threads=2)
    assert kernels.quantize(rows, qtype, backend="cpu", imatrix=imatrix).shape[0] == 40


@pytest.mark.parametrize("qtype,n", [("Q4_0", 48), ("Q6_K", 512 + 32), ("Q3_K", 100)])
def test_row_length_not_a_multiple_of_the_block_is_rejected(qtype, n):
    rows = np.zeros((2, n), np.float32)
    block = kernels.get_format(qtype).block_size
    with pytest.raises(ValueError, match=fr"{qtype} needs rows that are a multiple of {block} weights; got {n}"):
        kernels.quantize(rows, qtype)


@pytest.mark.parametrize("qtype", ["IQ2_XXS", "IQ2_XS"])
@pytest.mark.parametrize("backend", ["reference", "cpu", "auto"])
def test_types_llama_cpp_refuses_without_an_imatrix_are_refused(qtype, backend):
    rows = make_rows("normal", 2, 256)
    assert kernels.get_format(qtype).needs_imatrix
    with pytest.raises(kernels.ImatrixRequiredError,
                       match=f"^{qtype} needs an importance matrix, as in llama.cpp; calibrate"):
        kernels.quantize(rows, qtype, backend=backend)
    with pytest.raises(ValueError, match="ggml needs an importance matrix"):
        oracle.ggml_quantize(rows, qtype)      # ggml itself would abort the process
    assert not kernels.get_format("IQ2_S").needs_imatrix


def test_bad_arrays_and_names_are_rejected():
    with pytest.raises(ValueError, match="C-contiguous float32"):
        kernels.quantize(np.zeros((2, 32), np.float64), "Q8_0")
    with pytest.raises(ValueError, match="2-D"):
        kernels.quantize(np.zeros(32, np.float32), "Q8_0")
    with pytest.raises(ValueError, match="unknown quantization type 'Q7_0'"):
        kernels.quantize(np.zeros((1, 32), np.float32), "Q7_0")
    with pytest.raises(ValueError, match=r"imatrix must be float32 of shape \(32,\)"):
        kernels.quantize(np.zeros((1, 32), np.float32), "Q4_0", imatrix=np.ones(16, np.float32))


def test_auto_backend_without_a_gpu_is_the_cpu_kernel():
    rows = all_rows(1, 256, seed=2)
    if kernels.cuda_usable():
        pytest.skip("a GPU is present: auto means cuda here")
    assert np.array_equal(kernels.quantize(rows, "Q8_0"), oracle.ggml_quantize(rows, "Q8_0"))


def test_float_types_pass_through_like_numpy_and_gguf_py():
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize as gguf_quantize
    rows = all_rows(1, 256, seed=4)
    rows[0, :4] = [65520.0, -1e9, 1e-8, 2.0 ** -25]          # fp16 overflow and underflow
    assert np.array_equal(kernels.quantize(rows, "F32"), rows.view(np.uint8))
    with np.errstate(over="ignore"):
        f16 = rows.astype(np.float16)
    assert np.array_equal(kernels.quantize(rows, "F16"), f16.view(np.uint8))
    bf16 = gguf_quantize(rows, GGMLQuantizationType.BF16)
    assert np.array_equal(kernels.quantize(rows, "BF16"), np.asarray(bf16).view(np.uint8).reshape(rows.shape[0], -1))


@pytest.mark.parametrize("qtype", kernels.QUANT_TYPES)
def test_dequantize_agrees_with_llama_cpp(qtype):
    n = 512
    rows = np.concatenate([make_rows(d, 2, n, seed=8) for d in ("normal", "student_t", "outlier")])
    data = oracle.ggml_quantize(rows, qtype, needed_imatrix(qtype, n))
    ours = kernels.dequantize(data, qtype, n)
    assert ours.shape == rows.shape and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, oracle.ggml_dequantize(data, qtype, n))
    # and the round trip lands near the input: within a few quantization steps of each block
    block = kernels.get_format(qtype).block_size
    bits = kernels.get_format(qtype).bits_per_weight
    err = np.abs(ours - rows).reshape(len(rows), -1, block).max(axis=2)
    span = np.abs(rows).reshape(len(rows), -1, block).max(axis=2)
    assert (err <= span * 2.0 ** (3 - bits) + 1e-6).all()


@pytest.mark.parametrize("qtype", kernels.QUANT_TYPES)
def test_our_bytes_round_trip_through_dequantize(qtype):
    rows = make_rows("normal", 3, 512, seed=9)
    data = kernels.quantize(rows, qtype, backend="cpu", imatrix=needed_imatrix(qtype, 512))
    assert data.shape == (3, kernels.row_bytes(qtype, 512))
    np.testing.assert_array_equal(kernels.dequantize(data, qtype, 512),
                                  oracle.ggml_dequantize(data, qtype, 512))
