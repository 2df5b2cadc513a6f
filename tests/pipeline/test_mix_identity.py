"""Our quantizer against llama.cpp's on the same F32 GGUF: same per-tensor types for every file
type, and byte-identical tensor data for every type whose kernels are registered."""
from __future__ import annotations

import pytest

from quantdesk.core.convert import open_source
from quantdesk.core.quantize import FILE_TYPES, plan_types, quantize_model

from .conftest import gguf_tensors, llama_cpp_quantize, missing_kernels

QUANT_TYPES = [n for n, f in FILE_TYPES.items() if not f.is_float]


@pytest.fixture(scope="module")
def reference(tiny_f32, tmp_path_factory):
    """llama.cpp's output for (variant, type), made once per pair on first use."""
    made = {}
    folder = tmp_path_factory.mktemp("llama-cpp-ref")

    def get(variant: str, qtype: str):
        key = (variant, qtype)
        if key not in made:
            out = folder / f"{variant}-{qtype}.gguf"
            made[key] = llama_cpp_quantize(tiny_f32[variant], out, FILE_TYPES[qtype].ftype)
        return made[key]
    return get


@pytest.mark.parametrize("variant", ["a", "b"])
@pytest.mark.parametrize("qtype", list(FILE_TYPES))
def test_tensor_types_match_llama_cpp(tiny_f32, reference, variant, qtype):
    source = open_source(tiny_f32[variant])
    ours = plan_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype, source.params)
    theirs = {name: kind for name, (kind, _) in gguf_tensors(reference(variant, qtype)).items()}
    assert ours == theirs


@pytest.mark.parametrize("variant", ["a", "b"])
@pytest.mark.parametrize("qtype", QUANT_TYPES + ["F16", "BF16"])
def test_tensor_bytes_match_llama_cpp(tiny_f32, reference, tmp_path, variant, qtype):
    source = open_source(tiny_f32[variant])
    planned = plan_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype, source.params)
    gaps = missing_kernels(planned.values())
    if gaps:
        pytest.skip(f"no CPU kernel registered yet for {', '.join(gaps)}")
    ours = quantize_model(tiny_f32[variant], tmp_path / f"ours-{qtype}.gguf", qtype,
                          backend="cpu", threads=2).path
    got, want = gguf_tensors(ours), gguf_tensors(reference(variant, qtype))
    assert got.keys() == want.keys()
    for name in want:
        assert got[name][0] == want[name][0], name
        assert got[name][1] == want[name][1], f"{name} ({want[name][0]}) bytes differ"
    # general.file_type is what llama.cpp writes, and llama.cpp loads our file
    from gguf import GGUFReader
    field = GGUFReader(ours).get_field("general.file_type")
    assert int(field.contents()) == FILE_TYPES[qtype].ftype
    import llama_cpp
    llm = llama_cpp.Llama(str(ours), n_ctx=32, verbose=False, n_threads=2)
    llm.eval([3, 4, 5])
    assert len(llm.scores[2]) == llm.n_vocab()
    llm.close()
