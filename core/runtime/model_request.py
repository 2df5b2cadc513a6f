"""LoadRequest: what a door asks the model manager to load, checked and normalised on creation.

Every value llama.cpp would refuse (a context size, KV-cache types without flash attention, a
projector that does not fit the model) is a one-line ValueError here, before anything loads.
Planning the request (GPU layers, workers, memory) is model_plan.py's; loading it, models.py's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from quantdesk.core.engine.kv_cache import (DEFAULT_FLASH_ATTN, DEFAULT_KV_TYPE,
                                            DEFAULT_PROMPT_LOOKUP, check_kv_options,
                                            parse_flash_attn, parse_kv_type, parse_prompt_lookup)

from .gpu_layers import AUTO, GpuLayers, parse_gpu_layers

AUTO_MMPROJ = "auto"

DEFAULT_CTX = 2048

@dataclass(frozen=True)
class LoadRequest:
    """What a door asks for. Normalised on creation, so equal requests compare equal."""
    path: str
    n_ctx: int = DEFAULT_CTX
    gpu_layers: GpuLayers = AUTO
    n_threads: int | None = None   # None: the engine's default (physical cores)
    kv_type_k: str = DEFAULT_KV_TYPE          # KV-cache types (core.engine.kv_cache.KV_TYPES)
    kv_type_v: str = DEFAULT_KV_TYPE
    flash_attn: str = DEFAULT_FLASH_ATTN      # "auto" | "on" | "off"
    prompt_lookup: int = DEFAULT_PROMPT_LOOKUP  # draft tokens per step; 0: no speculation
    embedding: bool = False        # loaded for ModelHost.embed (the server's /v1/embeddings)
    rpc_servers: tuple = ()        # workers ("host:port", core/rpc) that may hold layers
    mmproj: str | None = AUTO_MMPROJ   # vision projector: "auto" finds one beside the model
    #   (core.engine.projector.find_projector), None or "" : none, a path: that one (checked)

    def __post_init__(self):
        """Raises ValueError (one line) for a value or combination llama.cpp would refuse."""
        from quantdesk.core.gguf import split_parts
        from quantdesk.core.rpc.endpoints import parse_endpoints
        path = os.path.abspath(str(self.path))
        # llama.cpp loads a split model only from its first part (when that is missing, the
        # part given stays, and the check before loading names the missing one)
        parts = split_parts(path)
        object.__setattr__(self, "path", str(parts[0]) if parts and os.path.exists(parts[0]) else path)
        object.__setattr__(self, "rpc_servers", parse_endpoints(self.rpc_servers))
        object.__setattr__(self, "gpu_layers", parse_gpu_layers(self.gpu_layers))
        if int(self.n_ctx) <= 0:
            raise ValueError(f"context size must be positive, got {self.n_ctx}")
        object.__setattr__(self, "n_ctx", int(self.n_ctx))
        object.__setattr__(self, "kv_type_k", parse_kv_type(self.kv_type_k))
        object.__setattr__(self, "kv_type_v", parse_kv_type(self.kv_type_v))
        object.__setattr__(self, "flash_attn", parse_flash_attn(self.flash_attn))
        object.__setattr__(self, "prompt_lookup", parse_prompt_lookup(self.prompt_lookup))
        check_kv_options(self.kv_type_k, self.kv_type_v, self.flash_attn)
        object.__setattr__(self, "mmproj", self._projector())

    def _projector(self) -> str | None:
        """The projector's absolute path, or None. Raises ValueError (one line) for one that
        does not fit the model; "auto" takes only one that fits, and none for embeddings."""
        from quantdesk.core.engine.projector import check_projector, find_projector
        chosen = self.mmproj
        if not chosen:
            return None
        if chosen == AUTO_MMPROJ:
            if self.embedding or not os.path.isfile(self.path):
                return None
            return find_projector(self.path)
        return check_projector(self.path, chosen)   # ProjectorError is a ValueError

    @property
    def engine_options(self) -> dict:
        """The KV, attention and decoding options as EngineClient.load takes them."""
        return {"type_k": self.kv_type_k, "type_v": self.kv_type_v,
                "flash_attn": self.flash_attn, "prompt_lookup": self.prompt_lookup}
