"""Our quantizer against llama.cpp's on the same F32 GGUF: same per-tensor types for every file
type, and byte-identical tensor data for every type whose kernels are registered."""
from __future__ import annotations

import pytest

from quantdesk.core.convert import open_source
from quantdesk.core.quantize import FILE_TYPES, tensor_types, quantize_model

from .conftest import gguf_tensors, imatrix_values, llama_cpp_quantize, write_imatrix

QUANT_TYPES = [n for n, f in FILE_TYPES.items() if not f.is_float and not f.needs_imatrix]
# llama.cpp refuses these without an importance matrix: compared with one
IMATRIX_TYPES = [n for n, f in FILE_TYPES.items() if f.needs_imatrix]


@pytest.fixture(scope="module")
def reference(tiny_f32, tmp_path_factory):
    """llama.cpp's output for (variant, type, with an imatrix?), made once on first use."""
    made = {}
    folder = tmp_path_factory.mktemp("llama-cpp-ref")

    def get(variant: str, qtype: str, weighted: bool = False):
        key = (variant, qtype, weighted)
        if key not in made:
            out = folder / f"{variant}-{qtype}-{int(weighted)}.gguf"
            values = _values(tiny_f32[variant]) if weighted else None
            made[key] = llama_cpp_quantize(tiny_f32[variant], out, FILE_TYPES[qtype].ftype,
                                           imatrix=values)
        return made[key]
    return get


def _values(path):
    source = open_source(path)
    try:
        return imatrix_values(source.tensors)
    finally:
        source.close()


def _plan(path, qtype, weighted):
    source = open_source(path)
    try:
        return tensor_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype,
                            source.params, has_imatrix=weighted)
    finally:
        source.close()


@pytest.mark.parametrize("variant", ["a", "b"])
@pytest.mark.parametrize("qtype", list(FILE_TYPES))
def test_tensor_types_match_llama_cpp(tiny_f32, reference, variant, qtype):
    weighted = FILE_TYPES[qtype].needs_imatrix    # llama.cpp writes these only with one
    ours = _plan(tiny_f32[variant], qtype, weighted)
    theirs = {name: kind for name, (kind, _) in
              gguf_tensors(reference(variant, qtype, weighted)).items()}
    assert ours == theirs


@pytest.mark.parametrize("variant", ["a", "b"])
@pytest.mark.parametrize("qtype", ["IQ3_XXS", "IQ3_S", "IQ3_M", "IQ4_XS", "Q4_0"])
def test_tensor_types_with_an_imatrix_match_llama_cpp(tiny_f32, reference, variant, qtype):
    """The rules that change with an imatrix (IQ3_XXS's attn_v and ffn_down, ...)."""
    ours = _plan(tiny_f32[variant], qtype, True)
    theirs = {name: kind for name, (kind, _) in gguf_tensors(reference(variant, qtype, True)).items()}
    assert ours == theirs


def test_every_mix_has_a_cpu_kernel_for_each_of_its_types(tiny_f32):
    """Every file type we offer plans only tensor types our CPU kernels write (on both shapes)."""
    from quantdesk.kernels import registry
    have = {q for q, _ in registry.available("cpu")} | {"F32", "F16", "BF16"}
    for qtype, f in FILE_TYPES.items():
        for variant in ("a", "b"):
            missing = set(_plan(tiny_f32[variant], qtype, f.needs_imatrix).values()) - have
            assert not missing, f"{qtype} (model {variant}) plans {sorted(missing)} without a kernel"


@pytest.mark.parametrize("variant", ["a", "b"])
@pytest.mark.parametrize("qtype", QUANT_TYPES + ["F16", "BF16"])
def test_tensor_bytes_match_llama_cpp(tiny_f32, reference, tmp_path, variant, qtype):
    source = open_source(tiny_f32[variant])
    planned = tensor_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype, source.params)
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


@pytest.mark.parametrize("variant, qtype", [("a", "Q4_K_M"), ("b", "Q4_0"), ("b", "IQ4_XS"),
                                           *[(v, q) for q in IMATRIX_TYPES + ["IQ3_S", "IQ3_M"]
                                             for v in ("a", "b")]])
def test_imatrix_quantization_matches_llama_cpp(tiny_f32, reference, tmp_path, variant, qtype):
    """With an importance matrix: same data as llama.cpp given the same matrix (and its
    imatrix rules: Q4_0 files give the first ffn_down layers Q4_1, IQ4_XS files keep them
    IQ4_XS instead of Q5_K; variant b's 320-wide rows fall back to IQ4_NL)."""
    planned = _plan(tiny_f32[variant], qtype, True)
    values = _values(tiny_f32[variant])
    imatrix = write_imatrix(tmp_path / "imatrix.gguf", values)
    ours = quantize_model(tiny_f32[variant], tmp_path / "ours.gguf", qtype, backend="cpu",
                          imatrix=imatrix).path
    got, want = gguf_tensors(ours), gguf_tensors(reference(variant, qtype, True))
    assert {n: k for n, (k, _) in got.items()} == planned
    for name in want:
        assert got[name] == want[name], f"{name} ({want[name][0]}) differs"
    if qtype == "Q4_0":
        assert planned["blk.0.ffn_down.weight"] == "Q4_1"
    if qtype == "IQ4_XS":
        assert planned["blk.0.ffn_down.weight"] == "IQ4_NL"      # 320 columns: the fallback
        assert "IQ4_XS" in planned.values()
    if qtype == "IQ3_XS":
        assert planned["blk.0.attn_q.weight"] == "IQ3_XXS"
    if qtype in ("IQ1_S", "IQ1_M"):                  # llama.cpp refuses these without an imatrix
        assert qtype in planned.values()
        if variant == "b":       # 320-column ffn_down past the first 1/8 of layers: fallback
            assert planned["blk.1.ffn_down.weight"] == "IQ4_NL"


@pytest.mark.parametrize("stored", ["F16", "BF16"])
def test_from_f16_and_bf16_gguf_matches_llama_cpp(tiny_f32, tmp_path, stored):
    """A half-precision GGUF source: tensors widened to float32 exactly as llama.cpp does, and
    1-D tensors kept in their stored type."""
    src = quantize_model(tiny_f32["a"], tmp_path / f"src-{stored}.gguf", stored).path
    source = open_source(src)
    planned = tensor_types([(t.name, t.shape, t.dtype) for t in source.tensors], "Q4_K_M",
                         source.params)
    ours = quantize_model(src, tmp_path / "ours.gguf", "Q4_K_M", backend="cpu").path
    theirs = llama_cpp_quantize(src, tmp_path / "ref.gguf", FILE_TYPES["Q4_K_M"].ftype)
    assert gguf_tensors(ours) == gguf_tensors(theirs)
