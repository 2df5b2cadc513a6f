"""The engine client adapted to Qt: one long-lived worker object in its own QThread.

EngineClient.load/generate block, so they run here, never on the GUI thread. Requests arrive as
queued signals and are served in order; results go back as signals. Stop is the one call made
directly from the GUI thread: EngineClient.cancel() is thread-safe by contract, and a request id
guards the race where Stop is pressed before the worker has even started the generation.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, Signal, Slot

from .formatting import one_line

AUTO_GPU_LAYERS = -1


@dataclass(frozen=True)
class LoadSpec:
    path: str
    n_ctx: int
    n_gpu_layers: int  # AUTO_GPU_LAYERS asks the planner


class EngineWorker(QObject):
    loading = Signal(str)          # model path, load starting
    loaded = Signal(object)        # LoadResult
    unloaded = Signal()
    planned = Signal(str)          # how "auto" GPU layers were decided, shown with the load
    plan_ready = Signal(object)    # the planner's Plan an "auto" load follows
    measured = Signal(object)      # (LoadResult, VRAM growth in bytes or None): after a load
    token = Signal(int, str)       # request id, text piece
    finished = Signal(int, object)  # request id, Done
    failed = Signal(int, str)      # request id (0 for a bare load), one-line message

    _load_requested = Signal(object)
    _chat_requested = Signal(int, object, object, object)
    _unload_requested = Signal()

    def __init__(self):
        super().__init__()
        self._client = None
        self._lock = threading.Lock()
        self._loaded_spec: LoadSpec | None = None
        self._cancel_upto = 0  # every request id <= this is cancelled
        self._load_requested.connect(self._do_load)
        self._chat_requested.connect(self._do_chat)
        self._unload_requested.connect(self._do_unload)

    # ---- called from the GUI thread -------------------------------------------------------
    def cancel(self, request_id: int) -> None:
        with self._lock:
            self._cancel_upto = max(self._cancel_upto, request_id)
            client = self._client
        if client is not None:
            client.cancel()

    def shutdown_now(self) -> None:
        """Final stop at app exit; safe after the worker thread has ended."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.shutdown()

    # ---- run in the worker thread ---------------------------------------------------------
    def _get_client(self):
        with self._lock:
            if self._client is None:
                from quantdesk.core.engine import EngineClient  # lazy: keeps startup light
                self._client = EngineClient()
            return self._client

    def _cancelled(self, request_id: int) -> bool:
        with self._lock:
            return request_id <= self._cancel_upto

    def _resolve_gpu_layers(self, spec: LoadSpec) -> int:
        if spec.n_gpu_layers != AUTO_GPU_LAYERS:
            return spec.n_gpu_layers
        try:
            from quantdesk.core.planner import plan_for_model
            plan = plan_for_model(spec.path, n_ctx=spec.n_ctx, lower_ctx=False)
        except Exception as exc:  # noqa: BLE001 - no planner or no answer: CPU is always safe
            self.planned.emit(f"auto: CPU only (no plan: {one_line(exc)})")
            return 0
        self.planned.emit(f"auto: {plan.fit}")
        self.plan_ready.emit(plan)
        return max(0, int(plan.gpu_layers))

    def _ensure_loaded(self, spec: LoadSpec, *, announce: bool = False):
        """Load unless this exact spec is loaded already (then only say so when asked)."""
        client = self._get_client()
        if self._loaded_spec == spec and client.loaded is not None:
            if announce:
                self.loaded.emit(client.loaded)
            return client
        self._loaded_spec = None
        self.loading.emit(spec.path)
        n_gpu_layers = self._resolve_gpu_layers(spec)
        vram_before = _vram_used()
        result = client.load(spec.path, n_ctx=spec.n_ctx, n_gpu_layers=n_gpu_layers)
        vram_after = _vram_used() if vram_before is not None else None
        self._loaded_spec = spec
        vram_growth = None if vram_after is None else max(0, vram_after - vram_before)
        self.measured.emit((result, vram_growth))
        self.loaded.emit(result)
        return client

    @Slot(object)
    def _do_load(self, spec: LoadSpec) -> None:
        try:
            self._ensure_loaded(spec, announce=True)
        except Exception as exc:  # noqa: BLE001
            self._loaded_spec = None
            self.failed.emit(0, one_line(exc))

    @Slot(int, object, object, object)
    def _do_chat(self, request_id: int, spec: LoadSpec, messages: list, params) -> None:
        from quantdesk.core.engine import Done
        try:
            if self._cancelled(request_id):
                self.finished.emit(request_id, _cancelled_done(spec))
                return
            client = self._ensure_loaded(spec)
            for item in client.generate(messages, params):
                if isinstance(item, Done):
                    self.finished.emit(request_id, item)
                    return
                if self._cancelled(request_id):
                    client.cancel()  # idempotent; covers a Stop that raced the start
                self.token.emit(request_id, item.text)
            raise RuntimeError("the engine ended the reply without a summary")
        except Exception as exc:  # noqa: BLE001 - host death, load failure: reported, app stays up
            self._loaded_spec = None
            self.failed.emit(request_id, one_line(exc))

    @Slot()
    def _do_unload(self) -> None:
        self._loaded_spec = None
        with self._lock:
            client = self._client
        if client is not None:
            try:
                client.unload()
            except Exception:  # noqa: BLE001 - a dead host is unloaded already
                pass
        self.unloaded.emit()


def _vram_used() -> int | None:
    """NVML's used memory over all NVIDIA GPUs, or None without one (probe fails soft)."""
    try:
        from quantdesk.core.hardware import nvidia_gpus
        gpus = nvidia_gpus()
    except Exception:  # noqa: BLE001 - a measurement must never break a load
        return None
    return sum(g.total_bytes - g.free_bytes for g in gpus) if gpus else None


def _cancelled_done(spec: LoadSpec):
    from quantdesk.core.engine import Done
    return Done(prompt_tokens=0, completion_tokens=0, tokens_per_second=0.0,
                finish_reason="cancelled", used_chat_template=False, n_ctx=spec.n_ctx)


class EngineController(QObject):
    """GUI-side handle: owns the worker thread; request ids tie tokens to the reply they belong to."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.worker = EngineWorker()
        self._thread = QThread()
        self._thread.setObjectName("quantdesk-engine")
        self.worker.moveToThread(self._thread)
        self._thread.start()
        self._next_id = 0
        self._closed = False

    def load(self, spec: LoadSpec) -> None:
        self.worker._load_requested.emit(spec)

    def chat(self, spec: LoadSpec, messages: list[dict], params) -> int:
        self._next_id += 1
        self.worker._chat_requested.emit(self._next_id, spec, messages, params)
        return self._next_id

    def cancel(self, request_id: int) -> None:
        self.worker.cancel(request_id)

    def unload(self) -> None:
        self.worker._unload_requested.emit()

    def host_pid(self) -> int | None:
        client = self.worker._client
        return None if client is None else client.host_pid

    def shutdown(self, wait_ms: int = 10000) -> None:
        """Stop any reply, end the host process and the worker thread (called on app exit)."""
        if self._closed:
            return
        self._closed = True
        self.worker.cancel(self._next_id)
        self._thread.quit()  # takes effect after the request in progress, which cancel() just ended
        if not self._thread.wait(3000):
            # Still busy (a load cannot be cancelled): ending the host makes the blocked call return.
            self.worker.shutdown_now()
            self._thread.wait(wait_ms)
        self.worker.shutdown_now()
