"""ModelManager: which models are loaded, in which engine host, for every door.

The window, the CLI and the coming local API server all load models here, so the rules live once:
  * "auto" GPU layers are resolved by the planner, once per load, for the context that is really
    loaded (never a smaller one); a manual count or "all" is planned too, so the plan shown is the
    plan followed. The conversion to llama.cpp's integer happens in gpu_layers.llama_gpu_layers.
  * one engine host (core.engine.EngineClient, a child process) per loaded model; never two hosts
    for the same model and settings, even when several threads ask at once;
  * at most `max_models` hosts (1 by default: loading another model first unloads the least
    recently used one, so its memory is free when "auto" is planned), and, with a
    `memory_budget`, at most that many bytes as the planner predicts them (RAM + VRAM of each
    load, predicted_bytes): a load that would go over unloads least recently used hosts first.

Threads: any thread may call any method. Loads and unloads take turns (one lock: a second load of
the same request waits and then finds the first one's host). EngineClient serves one caller at a
time, so each ModelHost serialises its generations; cancel works from any thread through the
caller's CancelToken or ModelHost.cancel(). A thread iterating ModelHost.generate must not load
another model before the iteration ends (the eviction waits for that host's turn).

Events (ModelLoading, ModelPlanned, ModelLoaded, ModelUnloaded) go to the `report` callback of the
call that caused them and to every subscriber, in the calling thread.

The parts: model_request.py (LoadRequest, checked on creation), model_plan.py (ResolvedLoad,
resolve_load: "auto" decided, predicted_bytes), model_host.py (ModelHost: one host, users take
turns), model_events.py (the events). This module keeps which hosts are loaded: find, load,
least-recently-used eviction under max_models and the memory budget, unload, shutdown.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from quantdesk.core.engine.types import EngineError

from .gpu_layers import AUTO
# Re-exported: `from quantdesk.core.runtime.models import LoadRequest, predicted_bytes, ...`
# is how the doors and tests name them.
from .model_events import ModelLoaded, ModelLoading, ModelPlanned, ModelUnloaded
from .model_host import ModelHost, cancelled_done
from .model_plan import ResolvedLoad, predicted_bytes, request_projector, resolve_load
from .model_plan import context_by_kv_type as _context_by_kv_type
from .model_request import AUTO_MMPROJ, DEFAULT_CTX, LoadRequest

__all__ = ["AUTO_MMPROJ", "DEFAULT_CTX", "LoadRequest", "ResolvedLoad", "ModelHost", "ModelManager",
           "ModelLoading", "ModelPlanned", "ModelLoaded", "ModelUnloaded", "cancelled_done",
           "predicted_bytes", "request_projector", "vram_used"]


# ---- the manager ---------------------------------------------------------------------------------
def _fresh_hardware():
    from quantdesk.core.hardware import detect
    return detect(refresh=True)   # free memory now, not at the first probe


def vram_used() -> int | None:
    """NVML's used memory over all NVIDIA GPUs, or None without one (the probe fails soft)."""
    try:
        from quantdesk.core.hardware import nvidia_gpus
        gpus = nvidia_gpus()
    except Exception:  # noqa: BLE001 - a measurement must never break a load
        return None
    return sum(g.total_bytes - g.free_bytes for g in gpus) if gpus else None



class ModelManager:
    def __init__(self, *, max_models: int = 1, hardware: Callable[[], object] | None = None,
                 memory_budget: int | None = None):
        """hardware: returns the core.hardware.Hardware to plan with (default: probed per plan).
        memory_budget: bytes the loaded models may take together (predicted_bytes); None: no
        limit but max_models. One model over the budget alone still loads (alone)."""
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        if memory_budget is not None and memory_budget <= 0:
            raise ValueError("the memory budget must be positive")
        self.max_models = max_models
        self.memory_budget = memory_budget
        self._hardware = hardware or _fresh_hardware
        self._hosts: dict[tuple, ModelHost] = {}        # by ResolvedLoad.key, least recent first
        self._requests: dict[LoadRequest, tuple] = {}   # request -> key of the host it got
        self._lock = threading.RLock()                  # guards the two dicts
        self._load_lock = threading.Lock()              # loads and unloads take turns
        self._listeners: list[Callable[[object], None]] = []
        self._loading_client = None
        self._closed = False

    # -- events ------------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[object], None]) -> Callable[[], None]:
        """Call `callback(event)` for every event; returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)
        return unsubscribe

    def _emit(self, event, report) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for fn in ([report] if report else []) + listeners:
            fn(event)

    # -- planning (model_plan.py) ------------------------------------------------------------------
    def resolve(self, request: LoadRequest) -> ResolvedLoad:
        """The plan for exactly this request (its context, its GPU layers), "auto" decided."""
        return resolve_load(request, self._hardware)

    def context_by_kv_type(self, request: LoadRequest, types=None) -> list:
        """The largest context `request`'s model reaches on this machine per KV-cache type (f16,
        q8_0, q4_0 by default), with its flash-attention and GPU-layer choices: a list of
        core.planner.kv_fit.KvReach. Raises PlannerError when the model cannot be planned."""
        return _context_by_kv_type(request, self._hardware, types)

    # -- loaded models -----------------------------------------------------------------------------
    def loaded(self) -> list[ModelHost]:
        """Hosts with a model loaded, least recently used first."""
        with self._lock:
            self._drop_dead()
            return list(self._hosts.values())

    def find(self, request: LoadRequest) -> ModelHost | None:
        """The host already serving `request`, if any (no load)."""
        with self._lock:
            self._drop_dead()
            key = self._requests.get(request)
            return self._hosts.get(key) if key is not None else None

    def _drop_dead(self) -> None:
        for key, host in list(self._hosts.items()):
            if not host.alive:   # the host died (crash, OOM): the next load starts a fresh one
                del self._hosts[key]
        self._requests = {r: k for r, k in self._requests.items() if k in self._hosts}

    def _remember(self, request: LoadRequest, host: ModelHost) -> ModelHost:
        with self._lock:
            key = host.resolved.key
            self._hosts[key] = self._hosts.pop(key)   # most recently used goes last
            self._requests[request] = key
            host.last_used = time.monotonic()
        return host

    def load(self, request: LoadRequest, report: Callable[[object], None] | None = None
             ) -> ModelHost:
        """The host serving `request`, loading it unless it is loaded already.
        Raises EngineError (one line) when the load fails."""
        with self._load_lock:
            if self._closed:
                raise EngineError("the model manager has shut down")
            host = self.find(request)
            if host is None:
                # Same settings, same host: "auto" that comes out as a loaded host's count, or
                # a fixed count asked for again under another spelling.
                resolved = self.resolve(request)
                with self._lock:
                    self._drop_dead()
                    host = self._hosts.get(resolved.key)
            if host is not None:
                self._remember(request, host)
                self._emit(ModelLoaded(host.resolved, host.result, None, reused=True), report)
                return host
            self._emit(ModelLoading(request), report)
            if (self._make_room(self.max_models - 1, report, predicted_bytes(resolved))
                    and (request.gpu_layers == AUTO or request.rpc_servers)):
                resolved = self.resolve(request)   # planned again: the freed memory counts
                # (and workers the evicted host held answer again)
            self._emit(ModelPlanned(resolved), report)
            host, growth = self._start_host(resolved)
            with self._lock:
                self._hosts[resolved.key] = host
            self._remember(request, host)
            self._emit(ModelLoaded(resolved, host.result, growth), report)
            return host

    def _start_host(self, resolved: ResolvedLoad) -> tuple[ModelHost, int | None]:
        from quantdesk.core.engine import EngineClient
        client = EngineClient()
        with self._lock:
            self._loading_client = client
        before = vram_used()
        try:
            r = resolved.request
            result = client.load(r.path, n_gpu_layers=resolved.n_gpu_layers, n_ctx=r.n_ctx,
                                 n_threads=r.n_threads, embedding=r.embedding,
                                 rpc_servers=resolved.workers,
                                 tensor_split=list(resolved.tensor_split) or None,
                                 mmproj=r.mmproj,
                                 **r.engine_options)
        except BaseException:
            client.shutdown()
            raise
        finally:
            with self._lock:
                self._loading_client = None
        after = vram_used() if before is not None else None
        growth = None if after is None else max(0, after - before)
        return ModelHost(client, resolved, result), growth

    def memory_in_use(self) -> int:
        """The loaded hosts' predicted bytes together."""
        return sum(predicted_bytes(h.resolved) for h in self.loaded())

    def _make_room(self, keep: int, report, need: int = 0) -> bool:
        """Unload least recently used hosts until at most `keep` remain and `need` more bytes
        fit the memory budget; True if any went."""
        evicted = False
        while True:
            with self._lock:
                self._drop_dead()
                hosts = list(self._hosts.items())
            used = sum(predicted_bytes(h.resolved) for _, h in hosts)
            over = self.memory_budget is not None and used + need > self.memory_budget
            if len(hosts) <= keep and not (hosts and over):
                return evicted
            evicted = True
            idle = [kv for kv in hosts if not kv[1].busy]
            key, host = (idle or hosts)[0]   # least recently used, idle ones first
            self._close(key, host, report)

    def _close(self, key, host: ModelHost, report) -> None:
        with self._lock:
            self._hosts.pop(key, None)
            self._drop_dead()
        try:
            host.close(wait=True)
        except Exception:  # noqa: BLE001 - a dead host is unloaded already
            pass
        self._emit(ModelUnloaded(host.path), report)

    def unload(self, path: str | None = None,
               report: Callable[[object], None] | None = None) -> int:
        """Unload `path` (every setting of it), or every model; returns how many hosts ended.
        A reply in progress on one of them finishes first."""
        target = None if path is None else os.path.abspath(str(path))
        with self._load_lock:
            with self._lock:
                self._drop_dead()
                victims = [(k, h) for k, h in self._hosts.items()
                           if target is None or h.path == target]
            for key, host in victims:
                self._close(key, host, report)
        return len(victims)

    def shutdown(self) -> None:
        """App exit (any thread, also while a load is in progress): every host ends now."""
        with self._lock:
            self._closed = True
            hosts, self._hosts, self._requests = list(self._hosts.values()), {}, {}
            loading = self._loading_client
        for host in hosts:
            try:
                host.close(wait=False)
            except Exception:  # noqa: BLE001
                pass
        if loading is not None:
            loading.shutdown()   # the blocked load() returns with an error
