"""An importance matrix computed on the user's text (core.imatrix) on a pool thread, as Qt signals.

The work itself runs in the evaluation child process (llama.cpp); cancel sets core.evaluate's
token, which that child checks between chunks. The matrix is saved in llama.cpp's imatrix GGUF
layout under data_dir()/imatrix, not models_dir(): the library lists every .gguf there as a model.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from ..jobs import start_job
from .quantize_paths import base_name, free_path


def imatrix_path(source, text_path) -> Path:
    """data_dir()/imatrix/<model>.<text>.imatrix.gguf, numbered when it exists already."""
    from quantdesk.core.paths import data_dir
    folder = data_dir() / "imatrix"
    folder.mkdir(parents=True, exist_ok=True)
    return free_path(folder, f"{base_name(source)}.{Path(text_path).stem}", ".imatrix.gguf")


class CalibrateJob(QObject):
    progress = Signal(int, int)   # chunks done, chunks in all
    finished = Signal(str)        # path of the saved imatrix
    failed = Signal(str)          # one line
    cancelled = Signal()

    def __init__(self, source: str, text_path: str, max_chunks: int | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        from quantdesk.core.evaluate import CancelToken  # light: numpy only
        self.source, self.text_path, self.max_chunks = source, text_path, max_chunks
        self.token = CancelToken()
        self.running = False

    def start(self, pool: QThreadPool) -> None:
        self.running = True
        start_job(pool, self, self._run, self._succeeded, self._errored)

    def cancel(self) -> None:
        self.token.cancel()

    def _run(self) -> str:  # pool thread
        from quantdesk.core.evaluate import read_text
        from quantdesk.core.imatrix import compute_imatrix, save_imatrix
        text = read_text(self.text_path)
        imx = compute_imatrix(self.source, text, max_chunks=self.max_chunks,
                              dataset=Path(self.text_path).name, progress=self.progress.emit,
                              cancel=self.token)
        return str(save_imatrix(imatrix_path(self.source, self.text_path), imx))

    def _succeeded(self, path: str) -> None:
        self.running = False
        self.finished.emit(path)

    def _errored(self, exc: BaseException) -> None:
        self.running = False
        from quantdesk.core.evaluate import Cancelled
        if isinstance(exc, Cancelled) or self.token.cancelled:
            self.cancelled.emit()
            return
        text = str(exc).strip().splitlines()
        self.failed.emit(text[0] if text else f"calibration failed ({type(exc).__name__})")
