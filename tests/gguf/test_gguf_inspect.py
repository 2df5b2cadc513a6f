"""inspect_gguf on the real test models, checked against llama.cpp and plain gguf-py."""
from __future__ import annotations

import ctypes
import os

import pytest

from quantdesk.core.gguf import ModelInfo, inspect_gguf


def _llama_cpp_facts(path) -> dict:
    """What llama.cpp itself reports after loading the model (weights mmapped, CPU)."""
    import llama_cpp
    llm = llama_cpp.Llama(str(path), n_ctx=64, n_gpu_layers=0, verbose=False)
    try:
        model = llm._model.model
        desc = ctypes.create_string_buffer(256)
        llama_cpp.llama_model_desc(model, desc, len(desc))
        template = llama_cpp.llama_model_chat_template(model, None)
        return {
            "parameters": llama_cpp.llama_model_n_params(model),
            "tensor_bytes": llama_cpp.llama_model_size(model),
            "block_count": llama_cpp.llama_model_n_layer(model),
            "context_length": llama_cpp.llama_model_n_ctx_train(model),
            "embedding_length": llama_cpp.llama_model_n_embd(model),
            "head_count": llama_cpp.llama_model_n_head(model),
            "head_count_kv": llama_cpp.llama_model_n_head_kv(model),
            "vocab_size": llm.n_vocab(),
            "chat_template": template.decode("utf-8") if template else None,
            "desc": desc.value.decode(),
        }
    finally:
        llm.close()


def _llama_ftype_name(file_type: str) -> str:
    """Our "Q4_K_M" in llama.cpp's llama_model_ftype_name spelling ("Q4_K - Medium")."""
    for suffix, word in (("_S", "Small"), ("_M", "Medium"), ("_L", "Large")):
        if "_K" in file_type and file_type.endswith(suffix):
            return f"{file_type[:-len(suffix)]} - {word}"
    return file_type


@pytest.fixture(params=["starter", "gemma"])
def real_model(request, starter_model, gemma_model):
    return {"starter": starter_model, "gemma": gemma_model}[request.param]


def test_matches_what_llama_cpp_reports(real_model):
    info = inspect_gguf(real_model)
    facts = _llama_cpp_facts(real_model)
    for key in ("parameters", "tensor_bytes", "block_count", "context_length", "embedding_length",
                "head_count", "head_count_kv", "vocab_size", "chat_template"):
        assert getattr(info, key) == facts[key], key
    assert info.has_chat_template == (facts["chat_template"] is not None)
    arch, _size, ftype = facts["desc"].split(" ", 2)     # e.g. "llama 256M Q4_1"
    assert info.architecture == arch
    assert _llama_ftype_name(info.file_type) == ftype
    assert info.size_bytes == os.path.getsize(real_model)
    assert info.files == (real_model.absolute(),) and info.path == real_model.absolute()


def test_starter_and_gemma_differ_where_expected(starter_model, gemma_model):
    starter, gemma = inspect_gguf(starter_model), inspect_gguf(gemma_model)
    assert (starter.file_type, starter.has_chat_template) == ("Q4_1", True)
    assert (gemma.file_type, gemma.has_chat_template, gemma.chat_template) == ("Q4_K_M", False, None)
    assert gemma.architecture == "gemma3" and gemma.sliding_window > 0


@pytest.mark.slow  # plain GGUFReader takes seconds on a 49k-token vocabulary
def test_matches_plain_gguf_reader(starter_model):
    """Our guarded, faster reader agrees with gguf-py's own GGUFReader on every figure."""
    from gguf import GGUFReader
    reader = GGUFReader(starter_model)
    tensors = reader.tensors
    info = inspect_gguf(starter_model)
    assert info.tensor_count == len(tensors)
    assert info.parameters == sum(int(t.n_elements) for t in tensors)
    assert info.tensor_bytes == sum(int(t.n_bytes) for t in tensors)
    layer0 = sum(int(t.n_bytes) for t in tensors if t.name.startswith("blk.0."))
    assert info.layer_bytes[0] == layer0 and len(info.layer_bytes) == info.block_count
    assert info.other_bytes + sum(info.layer_bytes) == info.tensor_bytes
    assert info.vocab_size == len(reader.fields["tokenizer.ggml.tokens"].data)
    assert info.chat_template == reader.fields["tokenizer.chat_template"].contents()
    assert info.name == reader.fields["general.name"].contents()
    del reader, tensors


def test_json_round_trip(gemma_model):
    info = inspect_gguf(gemma_model)
    data = info.to_json()
    assert ModelInfo.from_json(data) == info
    for key in ("architecture", "parameters", "file_type", "block_count", "context_length",
                "tensor_count", "size_bytes", "has_chat_template", "name", "files"):
        assert key in data
