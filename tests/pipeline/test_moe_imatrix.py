"""Importance matrices of mixture-of-experts models: the routed products (MUL_MAT_ID) of the
stacked 3-D expert tensors are collected per expert, as llama-imatrix stores them, and the
quantizer applies each expert's own row, byte for byte as llama.cpp's quantizer does."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantdesk.core.imatrix import compute_imatrix, load_imatrix, save_imatrix
from quantdesk.core.quantize import quantize_model

from .conftest import gguf_tensors, llama_cpp_quantize
from .tiny_families import build_family

TEXT = (Path(__file__).resolve().parents[2] / "resources" / "calibration" / "sample_en.txt").read_text()
Q4_0 = 2   # LLAMA_FTYPE_MOSTLY_Q4_0: a type whose quantizer weighs columns by the imatrix


@pytest.fixture(scope="module")
def mixtral_f32(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("moe-imx")
    build_family(tmp / "hf", "MixtralForCausalLM", n_layer=2)   # 4 experts, 2 per token
    return quantize_model(tmp / "hf", tmp / "mixtral-F32.gguf", "F32").path


@pytest.mark.slow
def test_expert_statistics_and_per_expert_quantization(mixtral_f32, tmp_path):
    imx = compute_imatrix(mixtral_f32, TEXT[:6000], n_ctx=64, max_chunks=3, threads=2)
    gate, gate_counts = imx.entries["blk.0.ffn_gate_exps.weight"]
    router, router_counts = imx.entries["blk.0.ffn_gate_inp.weight"]   # same input, every token
    assert gate.shape == (4, 128) and gate_counts.shape == (4,)
    assert len(set(gate_counts.tolist())) > 1                         # experts saw different tokens
    assert gate_counts.sum() == 2 * router_counts[0]                   # each token went to 2 experts
    np.testing.assert_allclose(gate.sum(0), 2 * router[0], rtol=1e-4)
    up, up_counts = imx.entries["blk.0.ffn_up_exps.weight"]
    np.testing.assert_array_equal(up, gate)
    np.testing.assert_array_equal(up_counts, gate_counts)
    assert imx.entries["blk.1.ffn_down_exps.weight"][0].shape == (4, 128)

    means = imx.means()
    # the per-expert rows and counts survive llama-imatrix's GGUF form
    loaded = load_imatrix(save_imatrix(tmp_path / "moe.imatrix.gguf", imx))
    np.testing.assert_array_equal(loaded["blk.0.ffn_gate_exps.weight"], means["blk.0.ffn_gate_exps.weight"])
    ours = gguf_tensors(quantize_model(mixtral_f32, tmp_path / "ours.gguf", "Q4_0", backend="cpu",
                                       imatrix=means).path)
    theirs = gguf_tensors(llama_cpp_quantize(mixtral_f32, tmp_path / "ref.gguf", Q4_0, imatrix=means))
    exps = [n for n in theirs if "_exps" in n]
    assert len(exps) == 6 and theirs[exps[0]][0] == "Q4_0"
    for name in exps:
        assert ours[name] == theirs[name], name
    # and each expert's own row matters: expert 0's row for all experts gives other bytes
    first = {n: np.tile(v[: v.size // 4], 4) if "_exps" in n else v for n, v in means.items()}
    other = gguf_tensors(quantize_model(mixtral_f32, tmp_path / "first.gguf", "Q4_0", backend="cpu",
                                        imatrix=first).path)
    assert other["blk.0.ffn_gate_exps.weight"] != ours["blk.0.ffn_gate_exps.weight"]
