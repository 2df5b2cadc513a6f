"""One quantization run (core.quantize.quantize_model) on a pool thread, adapted to Qt signals.

quantize_model calls `progress` in the pool thread; the signal carries the report to slots of
GUI-thread objects through a queued connection. Cancel sets the pipeline's own CancelToken, which
the writer checks between tensors and row chunks, so it really stops the work; the pipeline then
removes its NAME.gguf.part and raises Cancelled, reported here as `cancelled`.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from ..jobs import CancellableJob


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


class QuantizeJob(CancellableJob):
    progress = Signal(object)     # core.quantize.Progress (bytes done/total, ETA)
    what = "quantization"

    def __init__(self, request: QuantizeRequest, parent: QObject | None = None):
        super().__init__(parent)
        self.request = request

    def _run(self):  # pool thread
        from quantdesk.core.quantize import quantize_model
        r = self.request
        return quantize_model(r.source, r.output, r.qtype, backend=r.backend, threads=r.threads,
                              imatrix=r.imatrix or None, progress=self.progress.emit,
                              cancel=self.token, overwrite=r.overwrite,
                              allow_requantize=r.allow_requantize)
