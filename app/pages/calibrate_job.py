"""An importance matrix computed on the user's text (core.imatrix) on a pool thread, as Qt signals.

The work itself runs in the evaluation child process (llama.cpp); cancel sets core.evaluate's
token, which that child checks between chunks. The matrix is saved in llama.cpp's imatrix GGUF
layout under data_dir()/imatrix, not models_dir(): the library lists every .gguf there as a model.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ..jobs import CancellableJob
from .quantize_paths import base_name, free_path


def imatrix_path(source, text_path) -> Path:
    """data_dir()/imatrix/<model>.<text>.imatrix.gguf, numbered when it exists already."""
    from quantdesk.core.paths import data_dir
    folder = data_dir() / "imatrix"
    folder.mkdir(parents=True, exist_ok=True)
    return free_path(folder, f"{base_name(source)}.{Path(text_path).stem}", ".imatrix.gguf")


class CalibrateJob(CancellableJob):
    progress = Signal(int, int)   # chunks done, chunks in all
    what = "calibration"          # finished(str): path of the saved imatrix

    def __init__(self, source: str, text_path: str, max_chunks: int | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.source, self.text_path, self.max_chunks = source, text_path, max_chunks

    def _run(self) -> str:  # pool thread
        from quantdesk.core.evaluate import read_text
        from quantdesk.core.imatrix import compute_imatrix, save_imatrix
        text = read_text(self.text_path)
        imx = compute_imatrix(self.source, text, max_chunks=self.max_chunks,
                              dataset=Path(self.text_path).name, progress=self.progress.emit,
                              cancel=self.token)
        return str(save_imatrix(imatrix_path(self.source, self.text_path), imx))
