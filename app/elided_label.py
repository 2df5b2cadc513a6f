"""A one-line label that never widens its window: a text longer than the room it has is drawn
cut with "…", and the whole text is its tooltip. text() is always the whole text."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy

MIN_CHARS = 4   # the narrowest it may get: a few characters and the ellipsis


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        # Preferred: it asks for its whole text, yet may shrink to minimumSizeHint.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setToolTip(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        super().setText(text)
        self.setToolTip(text)   # the whole text, also when it fits (harmless, always right)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        hint = super().minimumSizeHint()
        margins = self.contentsMargins()
        width = (self.fontMetrics().horizontalAdvance("M" * MIN_CHARS + "…")
                 + margins.left() + margins.right())
        return QSize(min(hint.width(), width), hint.height())

    def is_elided(self) -> bool:
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()

    def paintEvent(self, _event):  # noqa: N802
        painter = QPainter(self)
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                              rect.width())
        self.style().drawItemText(painter, rect, int(self.alignment()), self.palette(),
                                  self.isEnabled(), shown, QPalette.ColorRole.WindowText)
