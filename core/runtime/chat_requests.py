"""What a chat asks the engine for: its LoadRequest and SamplingParams, from its stored settings
over the library's settings for the model (model_settings.py) and the user's defaults (the
Settings page, core.settings) over the built-in ones. ChatError is the one-line refusal.
"""
from __future__ import annotations

from quantdesk.core.engine.kv_cache import (DEFAULT_FLASH_ATTN, DEFAULT_KV_TYPE,
                                            DEFAULT_PROMPT_LOOKUP)
from quantdesk.core.engine.types import SamplingParams

from .gpu_layers import AUTO
from .models import AUTO_MMPROJ, DEFAULT_CTX, LoadRequest

SAMPLING_DEFAULTS = SamplingParams().to_dict()
LOAD_DEFAULTS = {"n_ctx": DEFAULT_CTX, "n_gpu_layers": AUTO, "kv_type_k": DEFAULT_KV_TYPE,
                 "kv_type_v": DEFAULT_KV_TYPE, "flash_attn": DEFAULT_FLASH_ATTN,
                 "prompt_lookup": DEFAULT_PROMPT_LOOKUP}


class ChatError(Exception):
    """A reply cannot start (no model chosen, nothing to answer). One line for the user."""


def chosen_load_defaults() -> dict:
    """The load settings the user chose for new chats on the Settings page (threads, context,
    GPU layers; core.settings); only the keys they set."""
    from quantdesk.core.settings import load_settings
    return load_settings().chat_defaults()


def default_load_settings() -> dict:
    """What a chat loads with where it sets nothing itself: the user's choices over the
    built-in LOAD_DEFAULTS."""
    return {**LOAD_DEFAULTS, **chosen_load_defaults()}


def model_load_settings(model_path) -> dict:
    """The load settings the library keeps for this model (core.runtime.model_settings: the
    Library's "Load settings…", `quantdesk model-settings`); only the keys it sets. A chat that
    gets this model starts from them, over the user's defaults, as the API server loads it."""
    if not model_path:
        return {}
    from .model_settings import ModelSettings
    return ModelSettings().get(model_path)


def load_request(model_path, settings: dict | None) -> LoadRequest:
    """The load a conversation's settings ask for (its context, GPU layers, threads, KV-cache
    types, flash attention, prompt lookup); a key the conversation does not set comes from the
    user's defaults. A setting llama.cpp would refuse raises ChatError."""
    merged = {**default_load_settings(),
              **{k: v for k, v in (settings or {}).items() if v is not None}}
    try:
        return LoadRequest(str(model_path), n_ctx=int(merged["n_ctx"]),
                           gpu_layers=merged["n_gpu_layers"], n_threads=merged.get("n_threads"),
                           kv_type_k=merged["kv_type_k"], kv_type_v=merged["kv_type_v"],
                           flash_attn=merged["flash_attn"],
                           prompt_lookup=merged["prompt_lookup"],
                           rpc_servers=_workers(merged.get("rpc_servers")),
                           mmproj=merged.get("mmproj", AUTO_MMPROJ))
    except ValueError as exc:
        raise ChatError(str(exc)) from None


def _workers(chosen) -> tuple:
    """A conversation's own list (the CLI's --rpc, even empty), else the machines enabled on the
    Settings page, read at each load (a machine added or removed there counts at once)."""
    if chosen is not None:
        return tuple(chosen)
    from quantdesk.core.settings import load_settings
    return load_settings().enabled_machines()


def sampling_params(settings: dict | None) -> SamplingParams:
    merged = {**SAMPLING_DEFAULTS, **(settings or {})}
    return SamplingParams(**{k: merged[k] for k in SAMPLING_DEFAULTS})
