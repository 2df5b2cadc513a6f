"""The Discover page's two views: the model card (Markdown, nothing loaded from outside) and the
tables (search results, quant variants, downloads)."""
from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QTextBrowser


class CardBrowser(QTextBrowser):
    """Read-only Markdown view that never loads anything: no images, no remote content."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._text: str | None = None   # the card shown, drawn again when the theme changes
        self.setOpenLinks(False)
        self.anchorClicked.connect(lambda url: QDesktopServices.openUrl(url) if url.scheme() in ("http", "https") else None)

    def loadResource(self, kind, url):  # noqa: N802 - Qt override
        return None

    def show_markdown(self, text: str) -> None:
        from quantdesk.app.markdown_view import is_dark, markdown_to_html  # strips raw HTML
        self._text = text
        self.setHtml(markdown_to_html(text or "*This repo has no model card.*", is_dark(self)))

    def changeEvent(self, event):  # noqa: N802 - Qt override
        super().changeEvent(event)
        # The theme changed: table borders and code boxes are coloured in the HTML.
        if event.type() == QEvent.Type.PaletteChange and self._text is not None:
            self.show_markdown(self._text)


def table_view(model, stretch: int = 0) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    view.setWordWrap(False)
    return view

