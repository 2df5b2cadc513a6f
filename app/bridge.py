"""The one adapter between core's plain-Python jobs and Qt: a job runs on a pool thread, its
events and outcome arrive as signals on the GUI thread.

A core job is a callable `fn(report, cancel) -> result`:
  * `report(event)` may be called any number of times from the job's thread (progress, a token,
    "loading"...); each event reaches the GUI thread as `Task.event(object)`, in order;
  * `cancel` is the job's core.cancel.CancelToken: `Task.cancel()` sets it from the GUI thread and
    the job stops at its next check (raising, or returning early: either way `cancelled` fires).
Exactly one of `finished(result)`, `failed(one line)` or `cancelled()` follows the last event.

Why a QObject per task and no lambdas on its signals: PySide runs a lambda slot in the *emitting*
thread; a bound method of a GUI-thread QObject goes through the event queue. The task therefore
relays everything through its own queued `_relay` signal to methods that run on the GUI thread.
"""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from .formatting import one_line

CoreJob = Callable[[Callable[[object], None], Any], Any]   # fn(report, cancel) -> result

_EVENT, _DONE, _ERROR = 0, 1, 2


class Task(QObject):
    event = Signal(object)       # whatever the job reported, on the GUI thread
    finished = Signal(object)    # the job's return value
    failed = Signal(str)         # one line for the user
    cancelled = Signal()         # the user's cancel ended it
    _relay = Signal(int, object)

    def __init__(self, fn: CoreJob, what: str = "job", parent: QObject | None = None):
        super().__init__(parent)
        from quantdesk.core.cancel import CancelToken
        self._fn = fn
        self.what = what
        self.token = CancelToken()
        self.running = False
        self._relay.connect(self._deliver)

    def start(self, pool: QThreadPool) -> "Task":
        self.running = True
        pool.start(_Runnable(self))
        return self

    def cancel(self) -> None:
        """Thread-safe: the job stops at its next check of the token."""
        self.token.cancel()

    def run_in_pool_thread(self) -> None:
        try:
            result = self._fn(lambda ev: self._relay.emit(_EVENT, ev), self.token)
        except Exception as exc:  # noqa: BLE001 - every failure reaches the GUI as one line
            self._relay.emit(_ERROR, exc)
        else:
            self._relay.emit(_DONE, result)

    @Slot(int, object)
    def _deliver(self, kind: int, value: object) -> None:
        if kind == _EVENT:
            self.event.emit(value)
            return
        self.running = False
        if self.token.cancelled:
            self.cancelled.emit()
        elif kind == _DONE:
            self.finished.emit(value)
        else:
            self.failed.emit(one_line(value) or f"{self.what} failed ({type(value).__name__})")
        self.deleteLater()


class _Runnable(QRunnable):
    def __init__(self, task: Task):
        super().__init__()
        self._task = task

    def run(self) -> None:
        self._task.run_in_pool_thread()


def run_task(pool: QThreadPool, parent: QObject, fn: CoreJob, *,
             on_event: Callable[[object], None] | None = None,
             on_finished: Callable[[object], None] | None = None,
             on_failed: Callable[[str], None] | None = None,
             on_cancelled: Callable[[], None] | None = None, what: str = "job") -> Task:
    """Start `fn(report, cancel)` on `pool`; the callbacks run on the GUI thread."""
    task = Task(fn, what, parent)
    for signal, slot in ((task.event, on_event), (task.finished, on_finished),
                         (task.failed, on_failed), (task.cancelled, on_cancelled)):
        if slot is not None:
            signal.connect(slot)
    return task.start(pool)


def call_later(pool: QThreadPool, parent: QObject, fn: Callable[[], Any],
               on_finished: Callable[[object], None] | None = None,
               on_failed: Callable[[str], None] | None = None) -> Task:
    """A short core call with no events and no cancel (`fn()`), off the GUI thread."""
    return run_task(pool, parent, lambda _report, _cancel: fn(),
                    on_finished=on_finished, on_failed=on_failed)


def serial_pool(parent: QObject | None = None) -> QThreadPool:
    """A one-thread pool: tasks on shared non-thread-safe objects run one at a time."""
    pool = QThreadPool(parent)
    pool.setMaxThreadCount(1)
    return pool


class Relay(QObject):
    """A callable for core objects that push updates from their own threads (the download
    manager's workers call `on_update(task)`): each call's argument is emitted as
    `delivered(object)` on the GUI thread, in order."""
    delivered = Signal(object)
    _queued = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._queued.connect(self._deliver)   # queued: this object lives in the GUI thread

    def __call__(self, value: object) -> None:
        self._queued.emit(value)

    @Slot(object)
    def _deliver(self, value: object) -> None:
        self.delivered.emit(value)
