"""Library page: the local models (starter, added, HF cache, quantized) and their metadata."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSplitter, QTableView, QVBoxLayout, QWidget)

from quantdesk.app import formatting

from .library_model import ENTRY_ROLE
from .library_service import LibraryService


def info_html(entry) -> str:
    """Metadata of one entry as a small table (or its error)."""
    if entry is None:
        return "<p>Select a model to see its details.</p>"
    if entry.info is None:
        return (f"<p><b>{html.escape(entry.path.name)}</b></p>"
                f"<p style='color:#8a1c12'>{html.escape(entry.error or 'unreadable')}</p>")
    info = entry.info
    rows = [("Name", info.name),
            ("Architecture", info.architecture),
            ("Parameters", f"{formatting.params(info.parameters)} ({info.parameters:,})"),
            ("File type", info.file_type),
            ("Layers", info.block_count),
            ("Context length", f"{info.context_length:,}"),
            ("Chat template", "yes" if info.has_chat_template else "no"),
            ("Size", formatting.size(info.size_bytes)),
            ("Files", len(info.files)),
            ("Source", entry.source),
            ("Path", str(info.path))]
    cells = "".join(f"<tr><td style='color:#5a6474; padding-right:12px'>{k}</td>"
                    f"<td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return (f"<p><b>{html.escape(formatting.display_name(entry))}</b></p>"
            f"<table>{cells}</table>")


class LibraryPage(QWidget):
    chat_requested = Signal(str)   # path of the model to chat with
    open_requested = Signal()      # File > Open from the page's own button

    def __init__(self, service: LibraryService, parent=None):
        super().__init__(parent)
        self.service = service
        title = QLabel("Library")
        title.setObjectName("pageTitle")

        self.open_button = QPushButton("Open GGUF…")
        self.chat_button = QPushButton("Chat with this")
        self.chat_button.setObjectName("primary")
        self.remove_button = QPushButton("Remove from library")
        self.remove_button.setToolTip("Forget this model; the file itself is not deleted")
        self.refresh_button = QPushButton("Refresh")
        bar = QHBoxLayout()
        bar.addWidget(title)
        bar.addStretch(1)
        for b in (self.open_button, self.refresh_button, self.remove_button, self.chat_button):
            bar.addWidget(b)

        self.table = QTableView()
        self.table.setModel(service.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.details = QLabel()
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMargin(8)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)

        self.open_button.clicked.connect(self.open_requested)
        self.refresh_button.clicked.connect(service.refresh)
        self.chat_button.clicked.connect(self._chat)
        self.remove_button.clicked.connect(self._remove)
        self.table.doubleClicked.connect(self._chat)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self._keep_path = None
        service.model.modelAboutToBeReset.connect(self._remember_selection)
        service.model.modelReset.connect(self._restore_selection)
        self._selection_changed()

    def selected_entry(self):
        rows = self.table.selectionModel().selectedRows()
        return self.service.model.data(rows[0], ENTRY_ROLE) if rows else None

    def select_path(self, path) -> bool:
        row = self.service.model.row_of(path)
        if row >= 0:
            self.table.selectRow(row)
        return row >= 0

    def _remember_selection(self) -> None:
        entry = self.selected_entry()
        self._keep_path = entry.path if entry is not None else None

    def _restore_selection(self) -> None:
        # A refresh keeps the row the user had; otherwise the first model shows its details.
        if not (self._keep_path and self.select_path(self._keep_path)) and \
                self.service.model.rowCount():
            self.table.selectRow(0)
        self._selection_changed()

    def _selection_changed(self, *args) -> None:
        entry = self.selected_entry()
        self.details.setText(info_html(entry))
        self.chat_button.setEnabled(entry is not None and entry.info is not None)
        # The starter model is always there; removing it would only make it come back.
        self.remove_button.setEnabled(entry is not None and entry.source != "starter")

    def _chat(self, *args) -> None:
        entry = self.selected_entry()
        if entry is not None and entry.info is not None:
            self.chat_requested.emit(str(entry.info.path))

    def _remove(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            self.service.remove(entry.path)
