"""Pages whose features land in later issues: they say what is coming rather than stay blank."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PlaceholderPage(QWidget):
    def __init__(self, title: str, text: str, parent=None):
        super().__init__(parent)
        heading = QLabel(title)
        heading.setObjectName("pageTitle")
        body = QLabel(text)
        body.setObjectName("placeholderText")
        body.setWordWrap(True)
        body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(body)
        layout.addStretch(1)


DISCOVER_TEXT = (
    "Coming soon: search the Hugging Face hub for models, see every quant variant of a repository "
    "with a fit verdict for this machine (full GPU, partial offload, CPU only, or does not fit) "
    "before you download, then download with progress, resume and verification.")

QUANTIZE_TEXT = (
    "Coming soon: turn a Hugging Face safetensors model into a GGUF on this machine and quantize it "
    "(Q8_0 … Q2_K, K-quants with importance weights) with Quantdesk's own CPU and CUDA kernels, "
    "then measure the quality of the result (perplexity and KL-divergence against the source).")

QUALITY_TEXT = (
    "Coming soon: what a quant costs on your own text — perplexity, KL-divergence and top-token "
    "agreement against the source model, for several quants at once, with a size/quality chart.")


class LazyPage(QWidget):
    """Holds a page that is built on first show, so its imports stay out of startup.

    `factory()` returns the real page, or None while that page does not exist yet (the text then
    says what is coming). If building it fails, the reason is shown instead of the page.
    """

    def __init__(self, title: str, text: str, factory, parent=None):
        super().__init__(parent)
        self.page: QWidget | None = None
        self._factory = factory
        self._placeholder = PlaceholderPage(title, text)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self._placeholder)

    def build(self) -> QWidget | None:
        if self._factory is None:
            return self.page
        factory, self._factory = self._factory, None
        try:
            page = factory()
        except Exception as exc:  # noqa: BLE001 - a broken page must not take the window down
            note = QLabel(f"This page could not start: {exc}")
            note.setWordWrap(True)
            note.setStyleSheet("color:#8a1c12")
            self._placeholder.layout().insertWidget(2, note)
            return None
        if page is not None:
            self._layout.removeWidget(self._placeholder)
            self._placeholder.deleteLater()
            self._layout.addWidget(page)
            self.page = page
        return page

    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        self.build()
