"""Tokenizer and chat template of an HF folder into GGUF metadata, as llama.cpp's converter does.

Two kinds: SentencePiece (`tokenizer.model`, through gguf-py's SentencePiece handling rules) and
byte-level BPE (`tokenizer.json`). For BPE llama.cpp needs `tokenizer.ggml.pre`, the name of the
pre-tokenizer; it is found like llama.cpp's `get_vocab_base_pre`: encode a fixed probe text, hash
the token ids, look the hash up. Special tokens, merges, add_bos/eos and the chat template (inside
tokenizer_config.json or beside it as chat_template.jinja) come from gguf-py's `SpecialVocab`.
"""
from __future__ import annotations

import json
import logging
from hashlib import sha256
from pathlib import Path
from typing import Any

from .errors import ConvertError
from .pretokenizers import PROBE_TEXT, pre_from_hash, pre_tokenizer_name

log = logging.getLogger(__name__)


def has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.model").is_file() or (folder / "tokenizer.json").is_file()


def add_vocab(gw: Any, folder: Path, vocab_size: int | None, *, prefer_spm: bool) -> str:
    """Write the tokenizer keys; returns the tokenizer kind ("llama" for SPM, "gpt2" for BPE)."""
    import gguf
    spm = (folder / "tokenizer.model").is_file()
    bpe = (folder / "tokenizer.json").is_file()
    if not spm and not bpe:
        raise ConvertError(f"no tokenizer in {folder.name} (tokenizer.json or tokenizer.model)")
    if spm and (prefer_spm or not bpe):
        tokens, scores, types = _sentencepiece_tokens(folder, vocab_size)
        gw.add_tokenizer_model("llama")
        gw.add_tokenizer_pre("default")
        gw.add_token_list(tokens)
        gw.add_token_scores(scores)
        gw.add_token_types(types)
        gguf.SpecialVocab(folder, n_vocab=len(tokens)).add_to_gguf(gw, quiet=True)
        return "llama"
    tokens, types, pre = _bpe_tokens(folder, vocab_size)
    gw.add_tokenizer_model("gpt2")
    gw.add_tokenizer_pre(pre)
    gw.add_token_list(tokens)
    gw.add_token_types(types)
    gguf.SpecialVocab(folder, load_merges=True).add_to_gguf(gw, quiet=True)
    return "gpt2"


def _looks_special(text: str) -> bool:
    # Some models mark control tokens as not special; llama.cpp's converter treats these as control.
    return (text in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (text.startswith("<|") and text.endswith("|>"))
            or (text.startswith("<｜") and text.endswith("｜>"))
            or (text.startswith("<unused") and text.endswith(">")))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConvertError(f"{path.name} is not valid JSON: {exc}") from None


def _bpe_tokens(folder: Path, vocab_size: int | None) -> tuple[list[str], list[int], str]:
    from gguf import TokenType
    tj = _read_json(folder / "tokenizer.json")
    model = tj.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ConvertError(f"unsupported tokenizer.json model type {model.get('type')!r} "
                           "(byte-level BPE or a tokenizer.model is needed)")
    vocab: dict[str, int] = dict(model["vocab"])
    added = {t["id"]: t for t in tj.get("added_tokens") or []}
    for tid, tok in added.items():
        vocab.setdefault(tok["content"], tid)
    n = vocab_size or (max(vocab.values()) + 1)
    if max(vocab.values()) >= n:
        raise ConvertError(f"tokenizer has token id {max(vocab.values())} but the model's "
                           f"vocab_size is {n}")
    reverse = {i: t for t, i in vocab.items()}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
            continue
        text = reverse[i]
        if i in added:
            if added[i].get("special") or _looks_special(text):
                types.append(TokenType.CONTROL)
            else:
                text = text.replace("\u2581", " ")  # llama.cpp expects user tokens pre-normalized
                types.append(TokenType.USER_DEFINED)
        else:
            types.append(TokenType.NORMAL)
        tokens.append(text)
    return tokens, types, _pre_tokenizer(folder, tj)


def _pre_tokenizer(folder: Path, tj: dict) -> str:
    """llama.cpp's name for this tokenizer's pre-tokenizer: by probe hash, else by its config."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        Tokenizer = None
    digest = None
    if Tokenizer is not None:
        ids = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(PROBE_TEXT).ids
        digest = sha256(str(ids).encode()).hexdigest()
        if pre_from_hash(digest) is None:
            log.info("pre-tokenizer hash %s not in llama.cpp's table; judging by its config", digest)
    return pre_tokenizer_name(digest, tj.get("pre_tokenizer"))


def _sentencepiece_tokens(folder: Path, vocab_size: int | None):
    from gguf import TokenType
    try:
        from sentencepiece import SentencePieceProcessor
    except ImportError:
        raise ConvertError("this model's tokenizer.model needs the `sentencepiece` package") from None
    sp = SentencePieceProcessor()
    try:
        sp.LoadFromFile(str(folder / "tokenizer.model"))
    except Exception as exc:  # sentencepiece raises OSError/RuntimeError for damaged files
        raise ConvertError(f"tokenizer.model cannot be read: {exc}") from None
    n = vocab_size or sp.vocab_size()
    tokens = [f"[PAD{i}]".encode() for i in range(n)]
    scores = [-10000.0] * n
    types = [int(TokenType.UNUSED)] * n
    for i in range(min(n, sp.vocab_size())):
        kind = TokenType.NORMAL
        if sp.IsUnknown(i):
            kind = TokenType.UNKNOWN
        elif sp.IsControl(i):
            kind = TokenType.CONTROL
        elif sp.IsUnused(i):
            kind = TokenType.UNUSED
        elif sp.IsByte(i):
            kind = TokenType.BYTE
        tokens[i], scores[i], types[i] = sp.IdToPiece(i).encode("utf-8"), sp.GetScore(i), int(kind)
    added_file = folder / "added_tokens.json"
    if added_file.is_file():
        for text, tid in _read_json(added_file).items():
            if tid < n:
                tokens[tid], scores[tid], types[tid] = text.encode(), -1000.0, int(TokenType.USER_DEFINED)
    config_file = folder / "tokenizer_config.json"
    if config_file.is_file():
        for tid, data in (_read_json(config_file).get("added_tokens_decoder") or {}).items():
            tid, text = int(tid), data["content"]
            if tid >= n:
                continue
            if data.get("special") or _looks_special(text):
                types[tid] = int(TokenType.CONTROL)
            else:
                text = text.replace("\u2581", " ")
                types[tid] = int(TokenType.USER_DEFINED)
            scores[tid], tokens[tid] = -1000.0, text.encode("utf-8")
    return tokens, scores, types
