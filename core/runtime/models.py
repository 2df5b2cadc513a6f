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
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from quantdesk.core.engine.kv_cache import (DEFAULT_FLASH_ATTN, DEFAULT_KV_TYPE,
                                            DEFAULT_PROMPT_LOOKUP, check_kv_options,
                                            parse_flash_attn, parse_kv_type, parse_prompt_lookup)
from quantdesk.core.engine.types import Done, EngineError, LoadResult, SamplingParams, Token

from .gpu_layers import ALL, AUTO, GpuLayers, llama_gpu_layers, parse_gpu_layers

AUTO_MMPROJ = "auto"

DEFAULT_CTX = 2048


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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


@dataclass(frozen=True)
class ResolvedLoad:
    """A request with every choice made: what the engine host is asked to load."""
    request: LoadRequest
    n_gpu_layers: int          # llama.cpp's integer (-1: all layers)
    plan: object | None        # core.planner.Plan for exactly this load; None: no plan possible
    note: str = ""             # how "auto" was decided, one line ("auto: partial")
    plan_error: str = ""       # why there is no plan, one line
    workers: tuple = ()        # the request's workers that answered: the load registers these
    tensor_split: tuple = ()   # layers per device (workers, then local GPU); () : llama.cpp's
    split: object | None = None   # core.planner.split.SplitPlan when workers take part

    @property
    def n_ctx(self) -> int:
        return self.request.n_ctx

    @property
    def left_out(self) -> list[str]:
        """One line per requested worker that did not answer (core.runtime.workers' notes)."""
        prefix = "left out: "
        return [p[len(prefix):] for p in self.note.split("; ") if p.startswith(prefix)]

    @property
    def key(self) -> tuple:
        """Same key, same host: model file, context, layers, threads, KV types, flash attention
        and prompt lookup."""
        r = self.request
        return (r.path, r.n_ctx, self.n_gpu_layers, r.n_threads, r.kv_type_k, r.kv_type_v,
                r.flash_attn, r.prompt_lookup, r.embedding, self.workers, self.tensor_split,
                r.mmproj)

    def to_json(self) -> dict:
        plan = self.plan
        return {"path": self.request.path, "n_ctx": self.n_ctx,
                "gpu_layers_requested": self.request.gpu_layers,
                "gpu_layers": self.n_gpu_layers, "note": self.note,
                "kv_type_k": self.request.kv_type_k, "kv_type_v": self.request.kv_type_v,
                "flash_attn": self.request.flash_attn,
                "prompt_lookup": self.request.prompt_lookup,
                "fit": plan.fit if plan else None,
                "n_layer": plan.n_layer if plan else None,
                "planned_gpu_layers": plan.gpu_layers if plan else None,
                "planned_ram_bytes": plan.ram_bytes if plan else None,
                "planned_vram_bytes": plan.vram_bytes if plan else None,
                "plan_note": plan.note if plan else None,
                "workers": list(self.workers),
                "mmproj": self.request.mmproj,
                "split": self.split.to_json() if self.split is not None else None}


# ---- events --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelLoading:
    request: LoadRequest


@dataclass(frozen=True)
class ModelPlanned:
    resolved: ResolvedLoad     # the plan the load follows


@dataclass(frozen=True)
class ModelLoaded:
    resolved: ResolvedLoad
    result: LoadResult
    vram_growth: int | None    # NVML used-memory growth across the load; None without NVIDIA
    reused: bool = False       # True: it was loaded already, nothing new happened


@dataclass(frozen=True)
class ModelUnloaded:
    path: str


def cancelled_done(n_ctx: int) -> Done:
    """The summary of a reply cancelled before it started."""
    return Done(prompt_tokens=0, completion_tokens=0, tokens_per_second=0.0,
                finish_reason="cancelled", used_chat_template=False, n_ctx=n_ctx)


# ---- one host ------------------------------------------------------------------------------------
@dataclass(eq=False)
class ModelHost:
    """One engine host process with one model loaded. Its users take turns."""
    client: object             # EngineClient
    resolved: ResolvedLoad
    result: LoadResult
    last_used: float = field(default_factory=time.monotonic)
    _turn: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def path(self) -> str:
        return self.resolved.request.path

    @property
    def pid(self) -> int | None:
        return self.client.host_pid

    @property
    def alive(self) -> bool:
        return self.client.loaded is not None

    @property
    def busy(self) -> bool:
        return self._turn.locked()

    def cancel(self) -> None:
        """Stop the reply in progress (any thread)."""
        self.client.cancel()

    def _wait_turn(self, cancel) -> bool:
        while not self._turn.acquire(timeout=0.1):
            if cancel is not None and cancel.cancelled:
                return False
        return True

    def generate(self, messages: list[dict], params: SamplingParams | None = None,
                 cancel=None, prompt: str | None = None,
                 tools: list[dict] | None = None) -> Iterator[Token | Done]:
        """Tokens, then one Done. `cancel` (a CancelToken, any thread) ends it with
        finish_reason "cancelled". Raises EngineError when the host dies. `prompt`: a raw text
        to continue instead of the chat-templated `messages` (the server's /v1/completions)."""
        if not self._wait_turn(cancel):
            yield cancelled_done(self.result.n_ctx)
            return
        try:
            if cancel is not None and cancel.cancelled:
                yield cancelled_done(self.result.n_ctx)
                return
            # The client looks at `cancel` while it waits too: a long prompt stops mid-way.
            yield from self.client.generate(messages, params, cancel, prompt=prompt,
                                            tools=tools)
        finally:
            self.last_used = time.monotonic()
            self._turn.release()

    def embed(self, texts: list[str], cancel=None) -> tuple[list[list[float]], int]:
        """(vectors, prompt tokens): needs a host loaded with LoadRequest(embedding=True)."""
        if not self._wait_turn(cancel):
            raise EngineError("cancelled")
        try:
            return self.client.embed(texts)
        finally:
            self.last_used = time.monotonic()
            self._turn.release()

    def close(self, wait: bool = True) -> None:
        """End the host process. wait: let a reply in progress finish first."""
        if wait:
            with self._turn:
                self.client.shutdown()
        else:
            self.client.cancel()
            self.client.shutdown()


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


def request_projector(request: LoadRequest):
    """The planner's cost of the request's vision projector (core.planner.projector), or None.
    libmtmd follows the model's flash-attention choice; "auto" is on where it matters (CPU)."""
    if not request.mmproj:
        return None
    from quantdesk.core.planner.projector import projector_cost
    return projector_cost(request.mmproj, flash_attn=request.flash_attn != "off")


def predicted_bytes(resolved: ResolvedLoad) -> int:
    """What a load costs by the planner (RAM + VRAM, the projector's included); without a plan,
    the files' sizes."""
    plan = resolved.plan
    extra = 0
    if resolved.request.mmproj and plan is None:
        try:
            extra = os.path.getsize(resolved.request.mmproj)
        except OSError:
            pass
    if plan is not None:
        return int(plan.ram_bytes) + int(plan.vram_bytes) + extra
    try:
        return os.path.getsize(resolved.request.path) + extra
    except OSError:
        return extra


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

    # -- planning ----------------------------------------------------------------------------------
    def resolve(self, request: LoadRequest) -> ResolvedLoad:
        """The plan for exactly this request (its context, its GPU layers), "auto" decided."""
        layers = request.gpu_layers
        try:
            from quantdesk.core.planner import load_profile, plan_for_model
            profile = load_profile(request.path)
            forced = None if layers == AUTO else profile.n_layer + 1 if layers == ALL else layers
            hardware = self._hardware()
            plan = plan_for_model(profile, n_ctx=request.n_ctx, hardware=hardware,
                                  n_gpu_layers=forced, lower_ctx=False,
                                  type_k=request.kv_type_k, type_v=request.kv_type_v,
                                  flash_attn=request.flash_attn,
                                  prompt_lookup=request.prompt_lookup,
                                  projector=request_projector(request))
            if request.rpc_servers:   # workers that answer take layers first
                from .workers import resolve_with_workers
                return resolve_with_workers(request, profile, hardware, plan, forced)
        except Exception as exc:  # noqa: BLE001 - no plan: "auto" stays on the CPU, always safe
            why = _one_line(exc)
            if layers == AUTO:
                return ResolvedLoad(request, 0, None, f"auto: CPU only (no plan: {why})", why)
            return ResolvedLoad(request, llama_gpu_layers(layers), None, "", why)
        if layers == AUTO:
            return ResolvedLoad(request, max(0, int(plan.gpu_layers)), plan, f"auto: {plan.fit}")
        return ResolvedLoad(request, llama_gpu_layers(layers), plan)

    def context_by_kv_type(self, request: LoadRequest, types=None) -> list:
        """The largest context `request`'s model reaches on this machine per KV-cache type (f16,
        q8_0, q4_0 by default), with its flash-attention and GPU-layer choices: a list of
        core.planner.kv_fit.KvReach. Raises PlannerError when the model cannot be planned."""
        from quantdesk.core.planner import load_profile
        from quantdesk.core.planner.kv_fit import KV_TABLE_TYPES, context_by_kv_type
        profile = load_profile(request.path)
        layers = request.gpu_layers
        forced = None if layers == AUTO else profile.n_layer + 1 if layers == ALL else layers
        return context_by_kv_type(profile, self._hardware(), types or KV_TABLE_TYPES,
                                  flash_attn=request.flash_attn, n_gpu_layers=forced,
                                  prompt_lookup=request.prompt_lookup,
                                  projector=request_projector(request))

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
