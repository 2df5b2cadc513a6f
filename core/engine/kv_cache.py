"""Load options that trade a little quality or memory for context: the KV-cache types, flash
attention and prompt-lookup decoding. Every door (window, CLI, server) and the planner take their
names, defaults and the one rule between them from here.

    parse_kv_type("Q8_0") -> "q8_0"          parse_flash_attn(True) -> "on"
    check_kv_options("q8_0", "q8_0", "off")  -> ValueError: one line saying what to change
    kv_ggml_type("q8_0") -> 8                 (llama_cpp.Llama(type_k=..., type_v=...))

KV types are the ones llama.cpp's --cache-type-k/-v accept; their layouts (block size, bytes per
block, ggml id) come from the one tensor-type catalogue (quantdesk.kernels.types).
"""
from __future__ import annotations

# llama.cpp's kv_cache_types (common/arg.cpp), cheapest quality loss first.
KV_TYPES = ("f16", "f32", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "iq4_nl", "q4_0")
FLOAT_KV_TYPES = frozenset({"f16", "f32", "bf16"})
DEFAULT_KV_TYPE = "f16"
# The KV types the planner offers when f16 does not reach the asked context, best first.
PROPOSED_KV_TYPES = ("q8_0", "q4_0")
KV_QUALITY_NOTE = {
    "f16": "llama.cpp's default",
    "f32": "no gain over f16, twice the memory",
    "bf16": "as f16",
    "q8_0": "near-lossless",
    "q5_1": "small loss", "q5_0": "small loss",
    "q4_1": "noticeable loss, most on long contexts",
    "iq4_nl": "noticeable loss, most on long contexts",
    "q4_0": "noticeable loss, most on long contexts",
}

FLASH_ATTN_MODES = ("auto", "on", "off")
# "auto" is llama.cpp's own choice at load: on where the backend holding the KV cache runs the
# flash-attention op (CPU, CUDA, Metal), off elsewhere; it also turns it on for a quantized V cache.
DEFAULT_FLASH_ATTN = "auto"
FLASH_ATTN_BACKENDS = frozenset({"cpu", "cuda", "metal"})

# Prompt-lookup decoding: draft tokens copied from earlier in the conversation per step
# (llama_cpp.llama_speculative.LlamaPromptLookupDecoding). 0: off.
DEFAULT_PROMPT_LOOKUP = 0
MAX_PROMPT_LOOKUP = 64

_TRUE = {"on", "true", "1", "yes", "enabled"}
_FALSE = {"off", "false", "0", "no", "disabled"}


def parse_kv_type(value) -> str:
    """A KV-cache type name in llama.cpp's spelling (lower case); ValueError names the choices."""
    name = str(value if value is not None else DEFAULT_KV_TYPE).strip().lower()
    if name not in KV_TYPES:
        raise ValueError(f"unknown KV-cache type {value!r}; choose one of {', '.join(KV_TYPES)}")
    return name


def parse_flash_attn(value) -> str:
    """"on" | "off" | "auto" from those words, a bool, or None (the default)."""
    if value is None:
        return DEFAULT_FLASH_ATTN
    if isinstance(value, bool):
        return "on" if value else "off"
    word = str(value).strip().lower()
    if word == "auto":
        return "auto"
    if word in _TRUE:
        return "on"
    if word in _FALSE:
        return "off"
    raise ValueError(f"flash attention must be on, off or auto, got {value!r}")


def parse_prompt_lookup(value) -> int:
    """Draft tokens per step for prompt-lookup decoding; 0 (or None/False) is off."""
    if value is None or value is False:
        return 0
    if value is True:
        return 10   # llama-cpp-python's own default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"prompt lookup takes a number of draft tokens, got {value!r}") from None
    if not 0 <= n <= MAX_PROMPT_LOOKUP:
        raise ValueError(f"prompt lookup takes 0 to {MAX_PROMPT_LOOKUP} draft tokens, got {n}")
    return n


def is_quantized(kv_type: str) -> bool:
    return parse_kv_type(kv_type) not in FLOAT_KV_TYPES


def check_kv_options(type_k: str, type_v: str, flash_attn: str) -> None:
    """llama.cpp refuses a quantized V cache without flash attention (its context creation fails
    with a log line only); say so before any load is tried."""
    if is_quantized(type_v) and parse_flash_attn(flash_attn) == "off":
        raise ValueError(f"a quantized V cache ({type_v}) needs flash attention: set flash "
                         f"attention to on or auto, or keep the V cache at f16")


def _layout(kv_type: str):
    from quantdesk.kernels.types import get_format
    return get_format(parse_kv_type(kv_type))


def kv_ggml_type(kv_type: str) -> int:
    """ggml's enum value, what llama_cpp.Llama(type_k=, type_v=) takes."""
    return _layout(kv_type).ggml_type


def kv_bytes_per_element(kv_type: str) -> float:
    t = _layout(kv_type)
    return t.type_size / t.block_size


def flash_attn_enabled(flash_attn: str, backend: str = "cpu", type_v: str = DEFAULT_KV_TYPE) -> bool:
    """Whether llama.cpp will run flash attention for this choice on `backend` (what the planner
    counts compute buffers for)."""
    mode = parse_flash_attn(flash_attn)
    if mode != "auto":
        return mode == "on"
    return is_quantized(type_v) or backend in FLASH_ATTN_BACKENDS
