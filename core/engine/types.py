"""Values that cross the client/host boundary. Plain dataclasses: they pickle and print well."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


class EngineError(Exception):
    """Loading or generating failed, or the model process died. str(e) is one line for the user."""


class InvalidRequestError(EngineError):
    """The request is at fault, not the engine or the model (the server answers 400)."""


class ContextOverflowError(InvalidRequestError):
    """The prompt does not fit the loaded context; nothing was cut to make it fit."""


class ModelFileError(EngineError):
    """The model file is at fault, not the engine (e.g. its chat template is invalid, hostile or
    makes no prompt): loading it again will not help. The CLI exits with status 2 for it."""


@dataclass
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 512
    seed: int = -1            # -1: a fresh random seed per reply
    stop: tuple = ()          # the caller's stop strings, on top of the prompt format's own
    json_schema: str | None = None   # JSON text: the reply follows this schema (a grammar)
    json_prefix: str = ""            # ... written between these two (a tool call's markers)
    json_suffix: str = ""
    gbnf: str = ""                   # a whole llama.cpp grammar (a tool format that is not JSON,
    #                                  tool_formats' qwen3_coder); the host uses it over json_schema
    logprobs: int | None = None      # None: none; n: each token's log-probability and the top n
    # More chat-template variables (a request's chat_template_kwargs: enable_thinking, ...)
    template_vars: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadResult:
    path: str
    n_ctx: int
    n_gpu_layers: int         # layers actually offloaded (0 when this llama.cpp build has no GPU)
    load_seconds: float
    has_chat_template: bool
    n_ctx_train: int
    rss_before: int           # host process RSS in bytes before / after the model load
    rss_after: int
    n_threads: int = 0
    n_layers: int = 0
    gpu_offload_supported: bool = False
    type_k: str = "f16"       # KV-cache types, flash attention and prompt lookup as loaded
    type_v: str = "f16"
    flash_attn: str = "off"
    prompt_lookup: int = 0
    rpc_servers: list = field(default_factory=list)   # workers registered for this load
    placement: list = field(default_factory=list)     # per device, from llama.cpp's load log:
    #   {device, endpoint, layers, model_bytes, kv_bytes, compute_bytes, total_bytes}
    mmproj: str = ""          # the vision projector loaded with the model ("" : none)

    @classmethod
    def from_dict(cls, d: dict) -> "LoadResult":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Token:
    text: str
    # With SamplingParams.logprobs: one entry per token whose text is in `text` (host.py's
    # TokenLogprob dicts: token, bytes, logprob, top), else None.
    logprobs: list | None = None


@dataclass
class Done:
    prompt_tokens: int
    completion_tokens: int
    tokens_per_second: float  # generation speed, after the prompt was processed
    finish_reason: str        # "stop" | "length" | "cancelled"
    used_chat_template: bool  # False: the model has no template, a plain completion prompt was used
    n_ctx: int
    prompt_seconds: float = 0.0      # prompt processing up to the first token
    generation_seconds: float = 0.0  # first token to last
    stop_sequence: str | None = None  # the caller's stop string that ended the reply, if one did
    image_tokens: int = 0     # of prompt_tokens, what the messages' images took

    @property
    def context_used(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_dict(cls, d: dict) -> "Done":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
