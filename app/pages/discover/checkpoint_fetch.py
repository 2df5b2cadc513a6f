"""The row under a safetensors repo's page while its checkpoint is fetched for local quantizing:
progress in bytes over all files, and Cancel (the bytes stay in the HF cache; the next
"Quantize locally…" resumes). The work is core.hub.snapshot_job, run through app/bridge.py.
The progress bar and Cancel keep their places; only Cancel's enabled state follows the job."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from quantdesk.app import formatting
from quantdesk.app.bridge import Task, run_task, serial_pool


class CheckpointFetch(QWidget):
    ready = Signal(str, str)      # snapshot folder, the type to select there ("": the page's pick)
    failed = Signal(str)          # one line for the page's message
    busy_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pool = serial_pool(self)    # one fetch at a time; searches keep their own pool
        self.task: Task | None = None
        self.repo_id: str | None = None
        self._qtype = ""
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop fetching; what was downloaded stays in the cache "
                                      "and the next fetch resumes it")
        self.cancel_button.setEnabled(False)
        self.status = QLabel()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.status)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self.cancel)
        self.hide()   # until the first fetch; then it stays, showing the last outcome

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self, repo_id: str, revision: str = "main", qtype: str | None = None) -> bool:
        """Fetch (or resume) the checkpoint; `ready` follows. False while a fetch runs."""
        from quantdesk.core.hub.snapshot import snapshot_job
        if self.running:
            return False
        self.repo_id, self._qtype = repo_id, qtype or ""
        self.status.setText(f"Fetching {repo_id}")
        self.bar.setValue(0)
        self.bar.setFormat("connecting…")
        self.show()
        self.task = run_task(self._pool, self, snapshot_job(repo_id, revision),
                             on_event=self._progress, on_finished=self._finished,
                             on_failed=self._failed, on_cancelled=self._cancelled,
                             what="checkpoint download")
        self.cancel_button.setEnabled(True)
        self.busy_changed.emit(True)
        return True

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.bar.setFormat("cancelling…")
            self.cancel_button.setEnabled(False)

    def _progress(self, p) -> None:
        self.bar.setValue(int(p.fraction * 1000))
        self.bar.setFormat(f"{p.fraction * 100:.0f}% · {formatting.size(p.done_bytes)} of "
                           f"{formatting.size(p.total_bytes)} · {formatting.eta(p.eta_s)}")

    def _ended(self, text: str) -> None:
        self.task = None
        self.bar.setFormat(text)
        self.cancel_button.setEnabled(False)
        self.busy_changed.emit(False)

    def _finished(self, snapshot) -> None:
        self.bar.setValue(1000)
        self._ended("fetched · opening it in Quantize")
        self.ready.emit(str(snapshot.folder), self._qtype)

    def _failed(self, message: str) -> None:
        self.bar.setValue(0)
        self._ended("failed")
        self.failed.emit(message)

    def _cancelled(self) -> None:
        self._ended("cancelled · downloaded files are kept; Quantize locally… resumes")

    def shutdown(self) -> None:
        """Window closing: stop the fetch (its bytes are kept) and wait for it."""
        self.cancel()
        self._pool.waitForDone(10000)
