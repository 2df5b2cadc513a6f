"""HF checkpoint → GGUF: llama.cpp loads our file and computes what the original weights compute."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.quantize import quantize_model

from .conftest import gguf_tensors, llama_cpp_quantize
from .tiny_llama import build_tiny_llama, build_tiny_other, numpy_forward, numpy_forward_other

PROMPT = b"The capital of France is Paris."


def _llama_logits(path, text=PROMPT):
    import llama_cpp
    # F32 KV cache: the default F16 cache alone would exceed the 1e-4 tolerance
    llm = llama_cpp.Llama(str(path), n_ctx=64, logits_all=True, verbose=False, n_threads=2,
                          type_k=0, type_v=0)
    tokens = llm.tokenize(text, add_bos=False, special=False)
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    llm.close()
    return tokens, logits


def _field(path, key):
    f = GGUFReader(path).get_field(key)
    return None if f is None else f.contents()


def test_tiny_llama_f32_logits_match_numpy_forward(tiny_hf, tmp_path):
    folder, weights = tiny_hf
    out = quantize_model(folder, tmp_path / "tiny.gguf", "F32").path
    tokens, got = _llama_logits(out)
    assert len(tokens) > 3
    want = numpy_forward(weights, tokens, n_layer=4, n_head=4, n_head_kv=2)
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel < 1e-4, rel


def test_metadata_tokenizer_and_template(tiny_hf, tmp_path):
    folder, _ = tiny_hf
    out = quantize_model(folder, tmp_path / "tiny.gguf", "F16").path
    assert _field(out, "general.architecture") == "llama"
    assert _field(out, "general.file_type") == 1
    assert _field(out, "tokenizer.ggml.model") == "gpt2"
    assert _field(out, "tokenizer.ggml.pre") == "gpt-2"  # judged from the trained pre-tokenizer
    assert _field(out, "tokenizer.ggml.bos_token_id") == 1
    assert _field(out, "tokenizer.ggml.eos_token_id") == 2
    assert "<|im_start|>" in _field(out, "tokenizer.chat_template")
    tokens = _field(out, "tokenizer.ggml.tokens")
    types = _field(out, "tokenizer.ggml.token_type")
    assert len(tokens) == 384 and tokens[1] == "<|im_start|>" and types[1] == 3  # CONTROL
    assert tokens[-1] == "[PAD383]" and types[-1] == 5  # padded up to the embedding rows
    # 1-D norms stay F32, matrices F16
    kinds = {t.name: t.tensor_type.name for t in GGUFReader(out).tensors}
    assert kinds["blk.0.attn_norm.weight"] == "F32" and kinds["blk.0.attn_q.weight"] == "F16"
    # and llama.cpp's chat formatting works on it: special tokens are parsed as single tokens
    import llama_cpp
    llm = llama_cpp.Llama(str(out), n_ctx=64, verbose=False, n_threads=2)
    assert llm.tokenize(b"<|im_start|>user", add_bos=False, special=True)[0] == 1
    llm.close()


def test_sharded_f16_checkpoint_with_v5_config(tmp_path):
    """Two shards + index, F16 weights, transformers-v5 config (rope_parameters) and the chat
    template beside tokenizer_config.json as chat_template.jinja."""
    folder = tmp_path / "hf"
    weights = build_tiny_llama(folder, n_layer=2, dtype="F16", shards=2, seed=3)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg.pop("rope_theta")}
    (folder / "config.json").write_text(json.dumps(cfg))
    tok_cfg = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "chat_template.jinja").write_text(tok_cfg.pop("chat_template"))
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_cfg))

    out = quantize_model(folder, tmp_path / "sharded.gguf", "F32").path
    assert _field(out, "llama.rope.freq_base") == pytest.approx(10000.0)
    assert "<|im_start|>" in _field(out, "tokenizer.chat_template")
    tokens, got = _llama_logits(out)
    want = numpy_forward(weights, tokens, n_layer=2, n_head=4, n_head_kv=2)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_hf_straight_to_q8_0_equals_llama_cpp_route(tiny_hf, tiny_f32, tmp_path):
    """BF16 safetensors → Q8_0 in one pass gives llama.cpp's bytes for HF → F32 GGUF → Q8_0."""
    folder, _ = tiny_hf
    ours = quantize_model(folder, tmp_path / "tiny-q8.gguf", "Q8_0", backend="cpu").path
    theirs = llama_cpp_quantize(tiny_f32["a"], tmp_path / "ref-q8.gguf", 7)
    got, want = gguf_tensors(ours), gguf_tensors(theirs)
    assert got == want
    assert got["blk.0.ffn_down.weight"][0] == "Q8_0" and got["output_norm.weight"][0] == "F32"
    # the Quantize page's size column predicts exactly the tensor data written
    from quantdesk.core.hardware import detect
    from quantdesk.core.runtime.quantize import analyse_source
    rows = analyse_source(folder, hardware=detect(), n_ctx=512).rows
    row = next(o for o in rows if o.name == "Q8_0")
    assert row.size_bytes == sum(len(data) for _, data in got.values())
    assert 8.0 < row.bits_per_weight < 9.0 and row.kernels_ready


def test_unsupported_architecture_refused_by_name(tiny_hf, tmp_path):
    folder = tmp_path / "falcon"
    shutil.copytree(tiny_hf[0], folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["FalconForCausalLM"]
    (folder / "config.json").write_text(json.dumps(cfg))
    from quantdesk.core.convert import ConvertError
    with pytest.raises(ConvertError, match="unsupported architecture FalconForCausalLM"):
        quantize_model(folder, tmp_path / "x.gguf", "F16")
    assert list(tmp_path.glob("*.gguf*")) == []


@pytest.mark.parametrize("arch", ["MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"])
def test_llama_like_architectures(arch, tmp_path):
    """Mistral (llama graph, q/k permuted), Qwen2 (q/k/v biases, tied), Qwen3 (q/k norms)."""
    weights = build_tiny_llama(tmp_path / "hf", n_layer=2, arch=arch, tied=arch != "MistralForCausalLM")
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    tokens, got = _llama_logits(out)
    want = numpy_forward(weights, tokens, n_layer=2, n_head=4, n_head_kv=2)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


@pytest.mark.parametrize("arch, tol", [
    ("Phi3ForCausalLM", 1e-4),
    # ggml's CPU GELU reads a float16 table: ~1e-3 per activation, so Gemma gets a looser bound
    ("GemmaForCausalLM", 2e-3), ("Gemma2ForCausalLM", 2e-3), ("Gemma3ForCausalLM", 2e-3)])
def test_gemma_and_phi3(arch, tol, tmp_path):
    """Gemma: norms stored as w, applied as (1 + w) → +1 at conversion; tied output. Phi3: fused
    qkv_proj / gate_up_proj kept fused as llama.cpp expects."""
    weights = build_tiny_other(tmp_path / "hf", arch)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    tokens, got = _llama_logits(out)
    want = numpy_forward_other(weights, tokens, arch, n_layer=2)
    assert np.abs(got - want).max() / np.abs(want).max() < tol


def test_sentencepiece_tokenizer(tmp_path):
    """A tokenizer.model (SentencePiece with byte fallback): llama.cpp tokenizes as SentencePiece."""
    import sentencepiece as spm
    build_tiny_llama(tmp_path / "hf", n_layer=2, tokenizer="spm")
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F16").path
    assert _field(out, "tokenizer.ggml.model") == "llama"
    assert _field(out, "tokenizer.ggml.add_bos_token") is True
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "hf" / "tokenizer.model"))
    import llama_cpp
    llm = llama_cpp.Llama(str(out), n_ctx=64, verbose=False, n_threads=2, vocab_only=True)
    for text in ["The capital of France is Paris.", "llama tensors ünïcödé 42"]:
        assert llm.tokenize(text.encode(), add_bos=False) == sp.encode(text)
    llm.close()
