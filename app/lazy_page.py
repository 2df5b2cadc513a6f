"""A slot in the window's page stack whose page is built on first show (or first use), so that
the page's modules stay out of the time to first window."""
from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyPage(QWidget):
    def __init__(self, factory: Callable[[], QWidget], parent=None):
        super().__init__(parent)
        self.page: QWidget | None = None   # None until built
        self._factory = factory
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def build(self) -> QWidget:
        """The page, built now if it was not yet."""
        if self.page is None:
            self.page = self._factory()
            self._layout.addWidget(self.page)
        return self.page

    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        self.build()
