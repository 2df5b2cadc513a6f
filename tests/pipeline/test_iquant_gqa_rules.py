"""The i-quant rules that depend on grouped-query attention (n_head / n_head_kv >= 4: attn_v gets
Q4_K in IQ3_XXS/XS/S/M and the IQ2/IQ1 files) on a model the shared tiny variants (GQA 2) do
not cover: our plan equals the per-tensor types llama_model_quantize writes, with an imatrix for
the types llama.cpp refuses without one."""
from __future__ import annotations

import pytest

from quantdesk.core.convert import open_source
from quantdesk.core.quantize import FILE_TYPES, quantize_model, tensor_types

from .conftest import gguf_tensors, imatrix_values, llama_cpp_quantize
from .tiny_llama import build_tiny_llama

IQ_TYPES = ("IQ3_M", "IQ3_S", "IQ3_XS", "IQ3_XXS", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS",
            "IQ1_M", "IQ1_S")


@pytest.fixture(scope="module")
def gqa4(tmp_path_factory):
    base = tmp_path_factory.mktemp("gqa4")
    build_tiny_llama(base / "hf", n_layer=8, n_embd=256, n_ff=512, n_head=8, n_head_kv=2, seed=5)
    return quantize_model(base / "hf", base / "gqa4-f32.gguf", "F32").path


@pytest.mark.slow
@pytest.mark.parametrize("qtype", IQ_TYPES)
def test_gqa4_plan_matches_llama_cpp(gqa4, tmp_path, qtype):
    weighted = FILE_TYPES[qtype].needs_imatrix
    source = open_source(gqa4)
    try:
        ours = tensor_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype,
                            source.params, has_imatrix=weighted)
        values = imatrix_values(source.tensors) if weighted else None
    finally:
        source.close()
    ref = llama_cpp_quantize(gqa4, tmp_path / "ref.gguf", FILE_TYPES[qtype].ftype, imatrix=values)
    assert ours == {name: kind for name, (kind, _) in gguf_tensors(ref).items()}
    assert ours["blk.0.attn_v.weight"] == "Q4_K"
