"""One quantization run (core.quantize.quantize_model) on a pool thread, adapted to Qt signals.

quantize_model calls `progress` in the pool thread; the signal carries the report to slots of
GUI-thread objects through a queued connection. Cancel sets the pipeline's own CancelToken, which
the writer checks between tensors and row chunks, so it really stops the work; the pipeline then
removes its NAME.gguf.part and raises Cancelled, reported here as `cancelled`.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QThreadPool, Signal

from ..jobs import start_job


@dataclass(frozen=True)
class QuantizeRequest:
    source: str
    output: str
    qtype: str
    backend: str = "auto"
    threads: int | None = None
    imatrix: str | None = None
    overwrite: bool = False
    allow_requantize: bool = False


class QuantizeJob(QObject):
    progress = Signal(object)     # core.quantize.Progress (bytes done/total, ETA)
    finished = Signal(object)     # core.quantize.QuantizeResult
    failed = Signal(str)          # one line
    cancelled = Signal()

    def __init__(self, request: QuantizeRequest, parent: QObject | None = None):
        super().__init__(parent)
        from quantdesk.core.quantize.progress import CancelToken  # light: no numba
        self.request = request
        self.token = CancelToken()
        self.running = False

    def start(self, pool: QThreadPool) -> None:
        self.running = True
        start_job(pool, self, self._run, self._succeeded, self._errored)

    def cancel(self) -> None:
        """Thread-safe; the run ends at the writer's next check (between row chunks)."""
        self.token.cancel()

    def _run(self):  # pool thread
        from quantdesk.core.quantize import quantize_model
        r = self.request
        return quantize_model(r.source, r.output, r.qtype, backend=r.backend, threads=r.threads,
                              imatrix=r.imatrix or None, progress=self.progress.emit,
                              cancel=self.token, overwrite=r.overwrite,
                              allow_requantize=r.allow_requantize)

    def _succeeded(self, result) -> None:
        self.running = False
        self.finished.emit(result)

    def _errored(self, exc: BaseException) -> None:
        self.running = False
        from quantdesk.core.quantize import Cancelled
        if isinstance(exc, Cancelled):
            self.cancelled.emit()
            return
        text = str(exc).strip().splitlines()
        self.failed.emit(text[0] if text else f"quantization failed ({type(exc).__name__})")

