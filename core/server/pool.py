"""The served models: load on first request, a fair queue per model, idle unload after a TTL.

The ModelManager decides what a load is (planner's "auto" GPU layers, never two hosts for one
model and settings, at most max_models hosts, least recently used unloaded first); this module
only adds what a server needs on top, on the event loop:
  * one FIFO queue per model file (asyncio.Lock wakes its waiters in arrival order); a request
    keeps its place until its generation thread has really ended, so the host is free when the
    next one starts; a queued request whose client goes leaves the queue;
  * each generation runs in its own thread (ModelHost.generate blocks), its events handed to the
    loop; the request's CancelToken stops it at once (client gone, server stopping);
  * idle hosts (no request queued or running, unused for `ttl` seconds) are unloaded.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator

from quantdesk.core.cancel import CancelToken
from quantdesk.core.engine.types import Done, SamplingParams, Token
from quantdesk.core.runtime.models import LoadRequest, ModelManager

from .catalog import ServedModel
from .errors import ApiError

DEFAULT_CTX = 4096
_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


class ModelPool:
    def __init__(self, manager: ModelManager, *, ttl: float | None = None,
                 default_ctx: int = DEFAULT_CTX, n_threads: int | None = None,
                 rpc_servers: tuple = (), settings=None):
        """settings: the library's per-model settings (core.runtime.model_settings)."""
        self.manager = manager
        self.settings = settings
        self.ttl = ttl
        self.default_ctx = default_ctx
        self.n_threads = n_threads
        self.rpc_servers = tuple(rpc_servers)
        self._queues: dict[str, asyncio.Lock] = {}
        self._pending: Counter = Counter()   # requests queued or running, per model file

    def load_request(self, model: ServedModel, n_ctx: int | None,
                     embedding: bool = False) -> LoadRequest:
        """The load a request asks for: the model's settings from the library (context, GPU
        layers, KV types, flash attention), else the server's default context (never above the
        model's training context) and the planner's "auto" GPU layers. A request's n_ctx wins
        over both. Blocking (reads the settings file)."""
        stored = self.settings.get(model.path) if self.settings is not None else {}
        trained = model.context_length or self.default_ctx
        if n_ctx is not None and n_ctx > trained:
            raise ApiError(400, f"n_ctx {n_ctx} is larger than {model.id}'s training context "
                                f"({trained})", param="n_ctx")
        ctx = n_ctx or stored.get("n_ctx") or min(self.default_ctx, trained)
        try:
            return LoadRequest(str(model.path), n_ctx=ctx,
                               gpu_layers=stored.get("n_gpu_layers", "auto"),
                               n_threads=self.n_threads, embedding=embedding,
                               rpc_servers=self.rpc_servers,
                               **{k: stored[k] for k in ("kv_type_k", "kv_type_v", "flash_attn")
                                  if k in stored})
        except ValueError as exc:
            raise ApiError(500, f"{model.id}: its stored model settings cannot be loaded "
                                f"({exc})", code="model_settings_error") from None

    def busy_paths(self) -> set[str]:
        return {p for p, n in self._pending.items() if n > 0}

    def generation(self, request: LoadRequest, messages: list[dict], params: SamplingParams,
                   prompt: str | None = None, tools: list[dict] | None = None) -> "Generation":
        return Generation(self, request, messages, params, prompt, tools)

    async def embed(self, request: LoadRequest, texts: list[str]):
        """(vectors, prompt tokens), in the model's FIFO queue like a generation."""
        path = request.path
        slot = self._queues.setdefault(path, asyncio.Lock())
        self._pending[path] += 1
        try:
            async with slot:
                host = await asyncio.to_thread(self.manager.load, request)
                return await asyncio.to_thread(host.embed, texts)
        finally:
            self._pending[path] -= 1
            if self._pending[path] <= 0:
                del self._pending[path]

    # -- idle unload -------------------------------------------------------------------------------
    async def reap_forever(self) -> None:
        if not self.ttl:
            return
        while True:
            await asyncio.sleep(min(max(self.ttl / 4, 0.05), 5.0))
            await self.reap()

    async def reap(self) -> int:
        """Unload hosts idle for longer than the TTL; how many went."""
        now, busy, gone = time.monotonic(), self.busy_paths(), 0
        for host in self.manager.loaded():
            if host.path in busy or host.busy or now - host.last_used < self.ttl:
                continue
            gone += await asyncio.to_thread(self._unload_if_idle, host)
        return gone

    def _unload_if_idle(self, host) -> int:
        if host.busy or host.path in self.busy_paths():
            return 0
        return self.manager.unload(host.path)


class Generation:
    """One request's turn on one model. `start()` queues, loads and returns the first event (so
    an error before the first token can still be an HTTP status); `events()` gives the rest."""

    def __init__(self, pool: ModelPool, request: LoadRequest, messages, params, prompt,
                 tools=None):
        self.pool, self.request = pool, request
        self.messages, self.params, self.prompt, self.tools = messages, params, prompt, tools
        self.cancel_token = CancelToken()
        self.host = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._slot: asyncio.Lock | None = None
        self._thread: threading.Thread | None = None

    def cancel(self) -> None:
        self.cancel_token.cancel()

    async def start(self) -> Token | Done:
        pool, path = self.pool, self.request.path
        slot = pool._queues.setdefault(path, asyncio.Lock())
        pool._pending[path] += 1
        try:
            await slot.acquire()
        except BaseException:
            self._leave()
            raise
        self._slot = slot
        try:
            self.host = await asyncio.to_thread(pool.manager.load, self.request)
            if self.cancel_token.cancelled:
                raise asyncio.CancelledError
            self._run_thread(asyncio.get_running_loop())
        except BaseException:
            self._release()
            raise
        try:
            return await self.next()
        except asyncio.CancelledError:
            self.cancel()   # the thread stops, then gives the queue's place to the next one
            raise

    async def events(self) -> AsyncIterator[Token | Done]:
        while True:
            event = await self.next()
            if event is _END:
                return
            yield event

    async def next(self):
        """The next Token or the Done; raises what the generation raised."""
        event = await self._queue.get()
        if isinstance(event, _Failed):
            raise event.exc
        return event

    def _run_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        def put(item) -> None:
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:   # the loop has closed (server stopped): nobody is listening
                pass

        def work() -> None:
            try:
                for event in self.host.generate(self.messages, self.params, self.cancel_token,
                                                prompt=self.prompt, tools=self.tools):
                    put(event)
            except BaseException as exc:  # noqa: BLE001 - handed to the request, never lost
                put(_Failed(exc))
            finally:
                put(_END)
                try:
                    loop.call_soon_threadsafe(self._release)
                except RuntimeError:
                    pass

        self._thread = threading.Thread(target=work, name="server-generation", daemon=True)
        self._thread.start()

    def _release(self) -> None:
        if self._slot is not None:
            slot, self._slot = self._slot, None
            slot.release()
            self._leave()

    def _leave(self) -> None:
        path = self.request.path
        self.pool._pending[path] -= 1
        if self.pool._pending[path] <= 0:
            del self.pool._pending[path]
