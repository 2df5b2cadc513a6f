"""Library page: the local models (starter, added, HF cache, quantized) and their metadata."""
from __future__ import annotations

import html

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QMenu, QMessageBox, QPushButton, QSplitter, QTableView,
                               QVBoxLayout, QWidget)

from quantdesk.app import formatting
from quantdesk.app.desktop import open_folder

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


def removal_question(entry, plan) -> tuple[str, str | None]:
    """(question, text of the "also delete" box or None when nothing may be deleted)."""
    question = (f"Remove “{formatting.display_name(entry)}” from the library?\n\n"
                "Removing forgets the model; the file stays on disk unless you tick the box.")
    if not plan.allowed or not plan.files:
        return question, None
    what = f"{len(plan.files)} files" if len(plan.files) > 1 else "the file"
    size = f", {formatting.size(plan.size_bytes)}" if plan.size_bytes else ""
    return question, f"Also delete {what} from disk{size}: {plan.note}"


class LibraryPage(QWidget):
    chat_requested = Signal(str)   # path of the model to chat with
    open_requested = Signal()      # File > Open from the page's own button
    load_settings_saved = Signal(str, dict)   # model path, its stored load settings

    def __init__(self, service: LibraryService, parent=None):
        super().__init__(parent)
        self.service = service
        title = QLabel("Library")
        title.setObjectName("pageTitle")

        self.open_button = QPushButton("Open GGUF…")
        self.chat_button = QPushButton("Chat with this")
        self.chat_button.setObjectName("primary")
        self.remove_button = QPushButton("Remove from library…")
        self.remove_button.setToolTip("Forget this model; asks before deleting the file itself")
        self.load_settings_button = QPushButton("Load settings…")
        self.load_settings_button.setToolTip(
            "This model's own context, GPU layers, KV cache and flash attention: a new chat "
            "with it and the local API server load it with these")
        self.refresh_button = QPushButton("Refresh")
        self.filter_edit = QLineEdit(placeholderText="Filter by name, quant, source…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMaximumWidth(320)
        bar = QHBoxLayout()
        bar.addWidget(title)
        bar.addWidget(self.filter_edit, 1)
        bar.addStretch(1)
        for b in (self.open_button, self.refresh_button, self.remove_button,
                  self.load_settings_button, self.chat_button):
            bar.addWidget(b)

        # The view shows the library through a filter; rows and selection speak proxy indexes.
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(service.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)   # any column: name, quant, source...
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
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
        self.load_settings_button.clicked.connect(self.edit_load_settings)
        # The window sets this to a callable returning its ModelManager: the dialog's plan line.
        self.load_planner = None
        self.settings_dialog = None   # the "Load settings…" dialog last opened
        self._model_settings = None
        self.table.doubleClicked.connect(self._chat)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.filter_edit.textChanged.connect(self.set_filter)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self._keep_path = None
        service.model.modelAboutToBeReset.connect(self._remember_selection)
        service.model.modelReset.connect(self._restore_selection)
        self._selection_changed()

    def selected_entry(self):
        rows = self.table.selectionModel().selectedRows()
        return self.proxy.data(rows[0], ENTRY_ROLE) if rows else None

    def select_path(self, path) -> bool:
        row = self.service.model.row_of(path)
        if row < 0:
            return False
        index = self.proxy.mapFromSource(self.service.model.index(row, 0))
        if not index.isValid():   # hidden by the filter: show everything, then select it
            self.filter_edit.clear()
            index = self.proxy.mapFromSource(self.service.model.index(row, 0))
        self.table.selectRow(index.row())
        return True

    def set_filter(self, text: str) -> None:
        if self.filter_edit.text() != text:
            self.filter_edit.setText(text)   # comes back here through textChanged
            return
        self.proxy.setFilterFixedString(text.strip())
        if self.selected_entry() is None and self.proxy.rowCount():
            self.table.selectRow(0)
        self._selection_changed()

    def visible_entries(self) -> list:
        return [self.proxy.data(self.proxy.index(r, 0), ENTRY_ROLE)
                for r in range(self.proxy.rowCount())]

    def _remember_selection(self) -> None:
        entry = self.selected_entry()
        self._keep_path = entry.path if entry is not None else None

    def _restore_selection(self) -> None:
        # A refresh keeps the row the user had; otherwise the first model shows its details.
        if not (self._keep_path and self.select_path(self._keep_path)) and \
                self.proxy.rowCount():
            self.table.selectRow(0)
        self._selection_changed()

    def _selection_changed(self, *args) -> None:
        entry = self.selected_entry()
        self.details.setText(info_html(entry))
        self.chat_button.setEnabled(entry is not None and entry.info is not None)
        self.load_settings_button.setEnabled(entry is not None and entry.info is not None)
        # The starter model is always there; removing it would only make it come back.
        self.remove_button.setEnabled(entry is not None and entry.source != "starter")

    def _chat(self, *args) -> None:
        entry = self.selected_entry()
        if entry is not None and entry.info is not None:
            self.chat_requested.emit(str(entry.info.path))

    def _remove(self) -> None:
        entry = self.selected_entry()
        if entry is None or entry.source == "starter":
            return
        from quantdesk.core.runtime.library import plan_deletion
        plan = plan_deletion(entry)
        answer = self.ask_remove(entry, plan)
        if answer is None:
            return
        # Ticking the box, which names the file and where it is, is the explicit yes.
        self.service.remove(entry.path, delete=answer == "delete", confirmed=answer == "delete")

    def ask_remove(self, entry, plan) -> str | None:
        """The confirmation: None (cancelled), "forget" or "delete". Tests replace this."""
        question, delete_text = removal_question(entry, plan)
        box = QMessageBox(QMessageBox.Icon.Question, "Remove from library", question,
                          QMessageBox.StandardButton.Cancel, self)
        remove = box.addButton("Remove", QMessageBox.ButtonRole.AcceptRole)
        check = None
        if delete_text:
            check = QCheckBox(delete_text)
            check.setToolTip("\n".join(str(f) for f in plan.files))
            box.setCheckBox(check)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is not remove:
            return None
        return "delete" if check is not None and check.isChecked() else "forget"

    def edit_load_settings(self):
        """Open the selected model's "Load settings…" dialog (window-modal, not blocking);
        returns it, or None when no readable model is selected."""
        entry = self.selected_entry()
        if entry is None or entry.info is None:
            return None
        from quantdesk.core.runtime.model_settings import ModelSettings

        from .load_settings_dialog import LoadSettingsDialog
        if self._model_settings is None:
            self._model_settings = ModelSettings()
        old = self.settings_dialog
        if old is not None and not old.isVisible() and old.wait_idle(0):
            old.deleteLater()   # its plan job is done: nothing of it runs any more
        planner = self.load_planner() if self.load_planner is not None else None
        dialog = LoadSettingsDialog(
            str(entry.info.path), formatting.display_name(entry), self._model_settings,
            trained_ctx=entry.info.context_length, n_layers=entry.info.block_count,
            resolve=planner.resolve if planner is not None else None, parent=self)
        dialog.saved.connect(self.load_settings_saved)
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def show_in_folder(self) -> None:
        entry = self.selected_entry()
        if entry is not None:
            open_folder(entry.info.path if entry.info is not None else entry.path)

    def context_menu(self) -> QMenu:
        """The right-click menu for the selected row (built per click: it follows the row)."""
        entry = self.selected_entry()
        menu = QMenu(self)
        chat = menu.addAction("Chat with this", self._chat)
        chat.setEnabled(entry is not None and entry.info is not None)
        menu.addAction("Load settings…", self.edit_load_settings).setEnabled(
            entry is not None and entry.info is not None)
        menu.addAction("Show in folder", self.show_in_folder).setEnabled(entry is not None)
        menu.addSeparator()
        remove = menu.addAction("Remove from library…", self._remove)
        remove.setEnabled(entry is not None and entry.source != "starter")
        return menu

    def _context_menu(self, pos) -> None:
        index = self.table.indexAt(pos)
        if index.isValid():
            self.table.selectRow(index.row())
            self.context_menu().exec(self.table.viewport().mapToGlobal(pos))
