"""A split GGUF (NAME-0000i-of-0000N.gguf, written by gguf-py's GGUFWriter) as a quantize source and
as a model to load: any part given means the whole model; a missing part is named."""
from __future__ import annotations

import numpy as np
import pytest

from quantdesk.core.convert import ConvertError
from quantdesk.core.quantize import quantize_model

from .conftest import gguf_tensors
from .tiny_llama import build_tiny_llama


def split_gguf(src, dst, max_tensors: int):
    """Copy `src` into parts of at most `max_tensors` tensors (gguf-py's split writer)."""
    import gguf
    reader = gguf.GGUFReader(src)
    arch = reader.get_field("general.architecture").contents()
    w = gguf.GGUFWriter(str(dst), arch, split_max_tensors=max_tensors)
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, f.contents(), f.types[0], sub_type=sub)
    for t in reader.tensors:
        w.add_tensor(t.name, np.array(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return w.format_shard_names(dst)


@pytest.fixture(scope="module")
def split_model(tmp_path_factory):
    base = tmp_path_factory.mktemp("split")
    build_tiny_llama(base / "hf", n_layer=2, seed=6)
    (base / "whole").mkdir()
    whole = quantize_model(base / "hf", base / "whole" / "tiny.gguf", "F16").path
    parts = split_gguf(whole, base / "tiny.gguf", max_tensors=8)
    assert [p.name for p in parts] == [f"tiny-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    return whole, parts


@pytest.mark.parametrize("given", [0, 2])
def test_quantize_from_any_part_equals_the_whole(split_model, tmp_path, given):
    whole, parts = split_model
    want = gguf_tensors(quantize_model(whole, tmp_path / "from-whole.gguf", "Q8_0").path)
    out = quantize_model(parts[given], tmp_path / "from-split.gguf", "Q8_0").path
    assert gguf_tensors(out) == want
    from gguf import GGUFReader
    keys = set(GGUFReader(out).fields)
    assert not {k for k in keys if k.startswith("split.")}       # one file out
    assert GGUFReader(out).get_field("tokenizer.ggml.tokens") is not None


def test_missing_part_is_named(split_model, tmp_path):
    _, parts = split_model
    hidden = parts[1].with_suffix(".away")
    parts[1].rename(hidden)
    try:
        with pytest.raises(ConvertError, match=r"^tiny-00002-of-00003\.gguf is missing \(part 2 of 3"):
            quantize_model(parts[0], tmp_path / "x.gguf", "Q8_0")
        assert not (tmp_path / "x.gguf").exists()
    finally:
        hidden.rename(parts[1])


def test_analyse_split_source(split_model):
    from quantdesk.core.hardware import detect
    from quantdesk.core.runtime.quantize import analyse_source
    whole, parts = split_model
    a = analyse_source(parts[2], hardware=detect(), n_ctx=256)
    b = analyse_source(whole, hardware=detect(), n_ctx=256)
    assert [(r.name, r.size_bytes) for r in a.rows] == [(r.name, r.size_bytes) for r in b.rows]
    assert a.parameters == b.parameters and a.refusal is None


def test_chat_loads_a_split_model_from_any_part(split_model):
    import llama_cpp
    from quantdesk.core.runtime.models import LoadRequest
    whole, parts = split_model
    request = LoadRequest(str(parts[2]))
    assert request.path == str(parts[0])      # llama.cpp refuses to start from another part
    logits = []
    for path in (request.path, str(whole)):
        llm = llama_cpp.Llama(path, n_ctx=32, logits_all=True, verbose=False, n_threads=2)
        llm.eval(llm.tokenize(b"The capital", add_bos=False))
        logits.append(np.array(llm.scores[: llm.n_tokens]))
        llm.close()
    np.testing.assert_array_equal(logits[0], logits[1])


def test_loading_without_the_first_part_names_it(split_model, tmp_path):
    from quantdesk.core.planner import PlannerError, load_profile
    from quantdesk.core.runtime.models import LoadRequest
    _, parts = split_model
    hidden = parts[0].with_suffix(".away")
    parts[0].rename(hidden)
    try:
        request = LoadRequest(str(parts[1]))
        assert request.path == str(parts[1])
        with pytest.raises(PlannerError, match=r"^tiny-00001-of-00003\.gguf: no such file$"):
            load_profile(request.path)
    finally:
        hidden.rename(parts[0])
