"""Our quantizer against llama.cpp's on the same F32 GGUF: same per-tensor types for every file
type, and byte-identical tensor data for every type whose kernels are registered."""
from __future__ import annotations

import pytest

from quantdesk.core.convert import open_source
from quantdesk.core.quantize import FILE_TYPES, tensor_types, quantize_model

from .conftest import gguf_tensors, llama_cpp_quantize

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
    ours = tensor_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype, source.params)
    theirs = {name: kind for name, (kind, _) in gguf_tensors(reference(variant, qtype)).items()}
    assert ours == theirs


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


def _write_imatrix(path, values: dict):
    """An imatrix in llama-imatrix's GGUF form (NAME.in_sum2 sums, NAME.counts), by our writer."""
    import numpy as np
    from quantdesk.core.imatrix import Imatrix, save_imatrix
    # a power of two as the count, so sums / counts gives back exactly v
    entries = {name: ((v * 4.0).reshape(1, -1).astype(np.float32), np.array([4.0], np.float32))
               for name, v in values.items()}
    save_imatrix(path, Imatrix(entries, chunk_count=1, chunk_size=1))


def _iq1_mixes_merged() -> bool:
    from quantdesk import kernels
    return "IQ1_S" in FILE_TYPES and "IQ1_M" in FILE_TYPES and kernels.get_format("IQ2_XXS").writable


# MERGE: the IQ1_S / IQ1_M file types need helper iq3's mix rules (FILE_TYPES["IQ1_S"/"IQ1_M"] in
# core/quantize/mix.py: attn_output -> IQ2_XXS, attn_v/ffn_down -> Q2_K or Q4_K, output -> Q5_K,
# token_embd -> Q2_K) and helper iq2's IQ2_XXS kernels; the iq1 branch has the IQ1 kernels only.
# Remove this skipif once all three branches are merged (then these must pass, never skip).
_NEEDS_IQ1_MERGE = pytest.mark.skipif(not _iq1_mixes_merged(),
                                      reason="MERGE: needs iq3's IQ1 mix rules + iq2's IQ2_XXS kernels")
IQ1_MIXES = [pytest.param(v, q, marks=_NEEDS_IQ1_MERGE, id=f"{v}-{q}")
             for v, q in (("a", "IQ1_S"), ("b", "IQ1_S"), ("a", "IQ1_M"), ("b", "IQ1_M"))]


@pytest.mark.parametrize("variant, qtype", [("a", "Q4_K_M"), ("b", "Q4_0"), ("b", "IQ4_XS")]
                         + IQ1_MIXES)
def test_imatrix_quantization_matches_llama_cpp(tiny_f32, tmp_path, variant, qtype):
    """With an importance matrix: same data as llama.cpp given the same matrix (and its
    imatrix rules: Q4_0 files give the first ffn_down layers Q4_1, IQ4_XS files keep them
    IQ4_XS instead of Q5_K; variant b's 320-wide rows fall back to IQ4_NL)."""
    import ctypes

    import llama_cpp
    import numpy as np
    source = open_source(tiny_f32[variant])
    planned = tensor_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype,
                         source.params, has_imatrix=True)
    rng = np.random.default_rng(7)
    values = {t.name: rng.uniform(0.1, 4.0, t.shape[-1]).astype(np.float32)
              for t in source.tensors if len(t.shape) == 2 and t.name != "token_embd.weight"}
    _write_imatrix(tmp_path / "imatrix.gguf", values)

    ours = quantize_model(tiny_f32[variant], tmp_path / "ours.gguf", qtype, backend="cpu",
                          imatrix=tmp_path / "imatrix.gguf").path

    entries = (llama_cpp.llama_model_imatrix_data * (len(values) + 1))()
    keep = []
    for i, (name, v) in enumerate(values.items()):
        arr = np.ascontiguousarray(v)
        keep.append(arr)
        entries[i].name = name.encode()
        entries[i].data = arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        entries[i].size = arr.size
    entries[len(values)].name = None
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = FILE_TYPES[qtype].ftype, 2
    params.imatrix = ctypes.cast(entries, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    ref = tmp_path / "ref.gguf"
    assert llama_cpp.llama_model_quantize(str(tiny_f32[variant]).encode(), str(ref).encode(),
                                          ctypes.byref(params)) == 0
    got, want = gguf_tensors(ours), gguf_tensors(ref)
    assert {n: k for n, (k, _) in got.items()} == planned
    for name in want:
        assert got[name] == want[name], f"{name} ({want[name][0]}) differs"
    if qtype == "Q4_0":
        assert planned["blk.0.ffn_down.weight"] == "Q4_1"
    if qtype == "IQ4_XS":
        assert planned["blk.0.ffn_down.weight"] == "IQ4_NL"      # 320 columns: the fallback
        assert "IQ4_XS" in planned.values()
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
