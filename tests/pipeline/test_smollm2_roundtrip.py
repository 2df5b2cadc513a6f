"""SmolLM2-135M (the starter model) dequantized to F32 by the test, then quantized by us and by
llama.cpp: identical bytes and types, and our file still answers a question."""
from __future__ import annotations

import pytest

from quantdesk.core.convert import open_source
from quantdesk.core.quantize import FILE_TYPES, tensor_types, quantize_model

from .conftest import gguf_tensors, llama_cpp_quantize

QUESTION = "What is the capital of France? Answer in one sentence."


@pytest.fixture(scope="module")
def smollm2_f32(starter_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "smollm2-f32.gguf"
    return quantize_model(starter_model, out, "F32", allow_requantize=True).path


@pytest.mark.slow
@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K_M"])
def test_smollm2_quantize_matches_llama_cpp_and_answers(smollm2_f32, tmp_path, qtype):
    source = open_source(smollm2_f32)
    planned = tensor_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype, source.params)
    ours = quantize_model(smollm2_f32, tmp_path / f"ours-{qtype}.gguf", qtype, backend="cpu").path
    theirs = llama_cpp_quantize(smollm2_f32, tmp_path / f"ref-{qtype}.gguf", FILE_TYPES[qtype].ftype)
    got, want = gguf_tensors(ours), gguf_tensors(theirs)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == want[name], f"{name} ({want[name][0]}) differs"
    (theirs).unlink()

    import llama_cpp
    llm = llama_cpp.Llama(str(ours), n_ctx=256, verbose=False, n_threads=2)
    reply = llm.create_chat_completion([{"role": "user", "content": QUESTION}], temperature=0.0,
                                       top_k=1, max_tokens=48, seed=0)
    llm.close()
    assert "Paris" in reply["choices"][0]["message"]["content"]
