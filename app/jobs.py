"""Run plain-Python callables off the GUI thread and get the outcome back on the GUI thread.

PySide delivers a signal connected to a lambda in the *emitting* thread, so callbacks are not
connected directly: a small QObject living in the GUI thread receives the outcome (queued, because
the emit happens in a pool thread) and calls the callbacks there.
"""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class Job(QObject):
    """One background call. `succeeded(result)` or `failed(exception)` fire on the GUI thread."""

    succeeded = Signal(object)
    failed = Signal(object)
    _outcome = Signal(bool, object)

    def __init__(self, fn: Callable[[], Any], parent: QObject | None = None):
        super().__init__(parent)
        self._fn = fn
        self._outcome.connect(self._deliver)

    def run_body(self) -> None:
        """Called in the pool thread."""
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the GUI as a message
            self._outcome.emit(False, exc)
        else:
            self._outcome.emit(True, result)

    @Slot(bool, object)
    def _deliver(self, ok: bool, value: object) -> None:
        (self.succeeded if ok else self.failed).emit(value)
        self.deleteLater()


class _Runnable(QRunnable):
    def __init__(self, job: Job):
        super().__init__()
        self._job = job

    def run(self) -> None:
        self._job.run_body()


def start_job(pool: QThreadPool, parent: QObject, fn: Callable[[], Any],
              on_success: Callable[[Any], None] | None = None,
              on_failure: Callable[[BaseException], None] | None = None) -> Job:
    """Run fn() on pool; callbacks run on the GUI thread. The job is parented to keep it alive."""
    job = Job(fn, parent)
    if on_success is not None:
        job.succeeded.connect(on_success)
    if on_failure is not None:
        job.failed.connect(on_failure)
    pool.start(_Runnable(job))
    return job


def serial_pool(parent: QObject | None = None) -> QThreadPool:
    """A one-thread pool: jobs on shared non-thread-safe objects (the Library) run one at a time."""
    pool = QThreadPool(parent)
    pool.setMaxThreadCount(1)
    return pool


class CancellableJob(QObject):
    """A long core job (quantize, calibrate) on a pool thread with the core's cancel token.

    Subclasses set `what` and implement `_run()` (pool thread; it passes `self.token` to the core
    function). Outcomes arrive on the GUI thread: `finished(result)`, `failed(one line)`, or
    `cancelled` when the user's cancel ended it (the core function has removed its partial output).
    """

    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    what = "job"

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        from quantdesk.core.cancel import CancelToken
        self.token = CancelToken()
        self.running = False

    def start(self, pool: QThreadPool) -> None:
        self.running = True
        start_job(pool, self, self._run, self._succeeded, self._errored)

    def cancel(self) -> None:
        """Thread-safe; the core function stops at its next check."""
        self.token.cancel()

    def _run(self):
        raise NotImplementedError

    def _succeeded(self, result) -> None:
        self.running = False
        self.finished.emit(result)

    def _errored(self, exc: BaseException) -> None:
        self.running = False
        if self.token.cancelled:  # the core raised its Cancelled (or failed while stopping)
            self.cancelled.emit()
            return
        text = str(exc).strip().splitlines()
        self.failed.emit(text[0] if text else f"{self.what} failed ({type(exc).__name__})")
