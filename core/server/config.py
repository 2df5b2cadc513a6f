"""How the server is run: address, key, limits. Checked once, for every door (CLI, window)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .pool import DEFAULT_CTX
from .request_flow import DEFAULT_MAX_BODY

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class ConfigError(ValueError):
    """A setting the server refuses (one line)."""


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False   # a host name or 0.0.0.0: reachable from other machines


@dataclass(frozen=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None          # required (Bearer or x-api-key) when set
    ttl: float | None = 600.0           # idle seconds before a model is unloaded; None: never
    max_models: int = 3                 # loaded at once, least recently used unloaded first
    memory_budget: int | str | None = "auto"   # bytes the loaded models may take (planner's
                                        # prediction); "auto": free RAM + VRAM at start; None: none
    n_ctx: int = DEFAULT_CTX            # context of a load when the request does not say
    cors_origins: tuple[str, ...] = field(default_factory=tuple)   # none: no CORS headers
    max_body_bytes: int = DEFAULT_MAX_BODY
    n_threads: int | None = None
    rpc_servers: tuple[str, ...] = ()   # workers (core/rpc) every load may put layers on

    def check(self) -> "ServerConfig":
        if not is_loopback(self.host) and not self.api_key:
            raise ConfigError(f"binding {self.host} makes the server reachable from other "
                              f"machines: give an API key (--api-key) to do that")
        if not 0 <= int(self.port) <= 65535:
            raise ConfigError(f"port {self.port} is not a TCP port")
        if self.max_models < 1:
            raise ConfigError("max models must be at least 1")
        if self.memory_budget not in (None, "auto") and (
                not isinstance(self.memory_budget, int) or self.memory_budget <= 0):
            raise ConfigError(f"the memory budget must be a positive number of bytes, 'auto' "
                              f"or none, got {self.memory_budget!r}")
        if self.ttl is not None and self.ttl <= 0:
            raise ConfigError("the idle unload time must be positive")
        return self

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"

    def budget_bytes(self) -> int | None:
        """The memory budget in bytes ("auto": what the planner's hardware probe finds free now:
        available RAM plus the usable VRAM)."""
        if self.memory_budget != "auto":
            return self.memory_budget
        from quantdesk.core.hardware import detect
        hw = detect(refresh=True)
        return int(hw.ram_available) + int(hw.usable_vram)
