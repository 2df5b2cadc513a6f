"""Which llama.cpp pre-tokenizer a BPE tokenizer uses (`tokenizer.ggml.pre`).

llama.cpp's converter encodes PROBE_TEXT with the model's tokenizer, hashes str(token ids) with
sha256 and looks the hash up in its table; `pretokenizer_hashes` holds that whole table as data
(with the llama.cpp version it came from). A tokenizer that is not in it (a model trained here, a
new fine-tune) is judged by its pre-tokenizer config instead; if that names nothing either, the
conversion stops with a message that names the hash, so the table can be extended.
"""
from __future__ import annotations

from .errors import ConvertError
from .pretokenizer_hashes import BY_HASH, LLAMA_CPP_SOURCE

PROBE_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n"
    "\U0001F680 (normal) \U0001F636\u200d\U0001F32B\uFE0F (multiple emojis concatenated) "
    "\u2705 \U0001F999\U0001F999 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "\u1780\u17b6\u1793\u17cb\u178f\u17c2\u1796\u17b7\u179f\u17c1\u179f\u17a2\u17b6\u1785\U0001F601 "
    "?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e ------======= "
    "\u043d\u0435\u0449\u043e \u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438 "
    "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? "
    "'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)


# The GPT-2 split expression; a plain ByteLevel pre-tokenizer with use_regex uses it.
_GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def pre_from_hash(digest: str) -> str | None:
    return BY_HASH.get(digest)


def pre_tokenizer_name(digest: str | None, pre_config: dict | None) -> str:
    """`tokenizer.ggml.pre` for a BPE tokenizer: by probe hash, else by its pre_tokenizer config."""
    name = pre_from_hash(digest) if digest else None
    if name is None:
        name = pre_from_config(pre_config)
    if name is None:
        which = f"probe hash {digest}" if digest else "no probe hash: the `tokenizers` package is missing"
        raise ConvertError(f"the tokenizer's BPE pre-tokenizer ({which}) is not one llama.cpp knows "
                           f"(table of {LLAMA_CPP_SOURCE}), and its pre_tokenizer config names none")
    return name


def pre_from_config(pre: dict | None) -> str | None:
    """Name a pre-tokenizer from tokenizer.json's `pre_tokenizer` when its hash is unknown."""
    if not pre:
        return "default"
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    for p in parts:
        if p.get("type") == "Split":
            regex = (p.get("pattern") or {}).get("Regex", "")
            if regex.startswith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"):
                return "llama-bpe"
            if regex == _GPT2_REGEX:
                return "gpt-2"
    return None
