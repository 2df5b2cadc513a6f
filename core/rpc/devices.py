"""In the engine host: make chosen workers ggml backend devices before a load.

What llama.cpp's own `--rpc` does (common/arg.cpp add_rpc_devices): ggml_backend_rpc_add_server
per endpoint, then ggml_backend_register. llama.cpp's default device selection then puts the RPC
devices first, ahead of local GPUs (fewer transfers), and splits offloaded layers over them by
the load's tensor_split. Each worker is probed first (wire.probe, with timeouts): ggml's client
aborts the process on a worker it cannot reach and waits forever on a busy one.

Registration is for the life of the process and cannot be undone, so EngineClient starts a fresh
host when a load asks for other workers than the host has registered.
"""
from __future__ import annotations

from .wire import WorkerError, probe

_registered: dict[str, list[str]] = {}    # endpoint -> its device names ("RPC0", ...)


def register_workers(endpoints) -> dict[str, list[str]]:
    """Register each endpoint once; returns {endpoint: device names}. Raises WorkerError (one
    line) for a worker that cannot be used, before anything is registered for it."""
    from . import ggml_lib as g
    for endpoint in endpoints:
        if endpoint in _registered:
            continue
        probe(endpoint)
        reg = g.fn("ggml_backend_rpc_add_server")(endpoint.encode())
        if not reg:
            raise WorkerError(f"worker {endpoint} offers no device")
        names = [g.fn("ggml_backend_dev_name")(g.fn("ggml_backend_reg_dev_get")(reg, i)).decode()
                 for i in range(g.fn("ggml_backend_reg_dev_count")(reg))]
        g.fn("ggml_backend_register")(reg)
        _registered[endpoint] = names
    return {e: _registered[e] for e in endpoints}


def device_endpoints() -> dict[str, str]:
    """Registered RPC device name -> its worker's endpoint."""
    return {name: e for e, names in _registered.items() for name in names}
