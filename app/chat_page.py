"""Chat page: conversation list, model picker, transcript, composer and settings panel.

Sending, streaming and the engine's signals are handled in chat_reply.ReplyMixin. All model work
goes through EngineController (a worker thread); the store (SQLite, small writes) is used from
the GUI thread.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListView, QMessageBox,
                               QProgressBar, QPushButton, QScrollArea, QSplitter, QVBoxLayout,
                               QWidget)

from .chat_settings import ChatSettingsPanel
from .composer import Composer
from .conversation_model import ID_ROLE, ConversationListModel
from .chat_reply import RENDER_EVERY_MS, ReplyMixin, _Stream
from .engine_worker import EngineController, LoadSpec
from quantdesk.app.pages.library.library_model import PATH_ROLE
from .markdown_view import MessageView
from .plan_panel import PlanPanel, PlanPreview


class ChatPage(ReplyMixin, QWidget):
    reply_started = Signal(int)        # message id of the new assistant reply
    token_received = Signal(str)
    reply_finished = Signal(object)    # Done
    reply_failed = Signal(str)
    model_loaded = Signal(object)      # LoadResult

    def __init__(self, library_service, engine: EngineController, parent=None):
        super().__init__(parent)
        from quantdesk.core.chatstore import ChatStore, ChatStoreError
        self.store_error: str | None = None
        try:
            self.store = ChatStore()
        except ChatStoreError as exc:  # unreadable history: keep it untouched, chat in memory
            self.store_error = f"{exc}. Chats in this session will not be saved."
            self.store = ChatStore(Path(":memory:"))
        self.engine = engine
        self.library = library_service
        self.conversations = ConversationListModel(self.store, self)
        self._cid: int | None = None
        self._messages: list = []
        self._stream: _Stream | None = None
        self._error: str | None = None
        self._editing_mid: int | None = None
        self._model_path: str | None = None
        self._loading_since: float | None = None
        self._render_pending = True
        self._plan_note = ""
        self._build()
        self._connect()
        self._render_timer = QTimer(self, singleShot=True, interval=RENDER_EVERY_MS)
        self._render_timer.timeout.connect(self._render)
        self._tick = QTimer(self, interval=500)
        self._tick.timeout.connect(self._update_live_status)
        if self.conversations.rowCount():
            self.select_conversation(self.conversations.conversation(0).id)
        self._update_buttons()

    # ---- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.new_button, self.rename_button, self.delete_button = (
            QPushButton("New"), QPushButton("Rename"), QPushButton("Delete"))
        self.conversation_view = QListView()
        self.conversation_view.setModel(self.conversations)
        self.conversation_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversation_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.conversation_view.setToolTip("Double-click a chat to rename it")
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        for b in (self.new_button, self.rename_button, self.delete_button):
            row.addWidget(b)
        lv.addLayout(row)
        lv.addWidget(self.conversation_view)

        self.model_picker = QComboBox()
        self.model_picker.setModel(self.library.model)
        self.model_picker.setMinimumContentsLength(14)
        self.model_picker.setPlaceholderText("No model in the library yet")
        self.load_button, self.unload_button = QPushButton("Load"), QPushButton("Unload")
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model_picker, 1)
        top.addWidget(self.load_button)
        top.addWidget(self.unload_button)

        self.view = MessageView()
        self.edit_label = QLabel("Editing your last message: Enter resends it, Esc cancels.")
        self.edit_label.setObjectName("placeholderText")
        self.edit_label.hide()
        self.composer = Composer()
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.stop_button, self.regen_button, self.edit_button = (
            QPushButton("Stop"), QPushButton("Regenerate"), QPushButton("Edit last"))
        buttons = QHBoxLayout()
        for b in (self.edit_button, self.regen_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # llama.cpp gives no load fraction: a busy indicator
        self.progress.setFixedWidth(120)
        self.progress.setMaximumHeight(14)
        self.progress.hide()
        self.status = QLabel("No model loaded.")
        self.status.setObjectName("chatStatus")
        status_row = QHBoxLayout()
        status_row.addWidget(self.progress)
        status_row.addWidget(self.status, 1)
        center = QWidget()
        cv = QVBoxLayout(center)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addLayout(top)
        cv.addWidget(self.view, 1)
        cv.addWidget(self.edit_label)
        cv.addWidget(self.composer)
        cv.addLayout(buttons)
        cv.addLayout(status_row)

        self.settings = ChatSettingsPanel()
        self.plan_panel = PlanPanel()  # below the load settings it depends on
        self.settings.layout().insertWidget(3, self.plan_panel)
        scroll = QScrollArea()
        scroll.setWidget(self.settings)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(230)
        split = QSplitter(Qt.Orientation.Horizontal)
        for w in (left, center, scroll):
            split.addWidget(w)
        split.setStretchFactor(1, 1)
        split.setSizes([190, 620, 270])
        layout = QVBoxLayout(self)
        layout.addWidget(split)

    def _connect(self) -> None:
        self.new_button.clicked.connect(self.new_conversation)
        self.rename_button.clicked.connect(lambda: self.rename_conversation())
        self.delete_button.clicked.connect(self.delete_conversation)
        self.conversation_view.selectionModel().currentChanged.connect(self._conversation_clicked)
        self.load_button.clicked.connect(self.load_selected_model)
        self.unload_button.clicked.connect(self.engine.unload)
        self.model_picker.activated.connect(self._picker_changed)
        self.library.model.modelReset.connect(self._restore_picker)
        self.composer.submitted.connect(self.send)
        self.composer.escape_pressed.connect(self.cancel_edit)
        self.send_button.clicked.connect(self.composer.submit)
        self.stop_button.clicked.connect(self.stop)
        self.regen_button.clicked.connect(self.regenerate)
        self.edit_button.clicked.connect(self.edit_last)
        w = self.engine.worker
        self.plan_preview = PlanPreview(self.plan_panel, w, self)
        self.settings.load_settings_changed.connect(lambda: self.plan_preview.request(self._spec()))
        w.loading.connect(self._on_loading)
        w.loaded.connect(self._on_loaded)
        w.unloaded.connect(self._on_unloaded)
        w.planned.connect(self._on_planned)
        w.token.connect(self._on_token)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)

    # ---- conversations -------------------------------------------------------------------
    def current_conversation_id(self) -> int | None:
        return self._cid

    def new_conversation(self) -> int:
        self._save_conversation_settings()
        # A new chat starts with the current model, system prompt and settings.
        conv = self.store.create_conversation(
            system_prompt=self.settings.system_prompt.toPlainText(),
            model_path=self._model_path, settings=self.settings.settings())
        self.conversations.reload()
        self.select_conversation(conv.id)
        self.composer.setFocus()
        return conv.id

    def rename_conversation(self, title: str | None = None) -> None:
        row = self.conversations.row_of(self._cid) if self._cid is not None else -1
        if row < 0:
            return
        index = self.conversations.index(row)
        if title is None:
            self.conversation_view.edit(index)  # inline editor; the model saves on commit
        else:
            self.conversations.setData(index, title)

    def ask_confirmation(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Quantdesk", text)
        return answer == QMessageBox.StandardButton.Yes

    def delete_conversation(self) -> None:
        if self._cid is None or (self._stream and self._stream.cid == self._cid):
            return
        conv = self.store.get_conversation(self._cid)
        if not self.ask_confirmation(f"Delete the conversation “{conv.title}”?"):
            return
        self.store.delete_conversation(self._cid)
        self._cid = None
        self.conversations.reload()
        first = self.conversations.conversation(0)
        self.select_conversation(first.id if first else None)

    def _conversation_clicked(self, current: QModelIndex, _previous=None) -> None:
        cid = current.data(ID_ROLE) if current.isValid() else None
        if cid is not None and cid != self._cid:
            self.select_conversation(cid)

    def select_conversation(self, cid: int | None) -> None:
        if cid != self._cid:
            self._save_conversation_settings()
        self._cid, self._error = cid, None
        self.cancel_edit()
        row = self.conversations.row_of(cid) if cid is not None else -1
        if row >= 0:
            self.conversation_view.selectionModel().blockSignals(True)
            self.conversation_view.setCurrentIndex(self.conversations.index(row))
            self.conversation_view.selectionModel().blockSignals(False)
        if cid is not None:
            conv = self.store.get_conversation(cid)
            self.settings.system_prompt.setPlainText(conv.system_prompt or "")
            self.settings.set_settings(conv.settings or {})
            if conv.model_path:
                self.select_model(conv.model_path)
        self._reload_messages()

    def _save_conversation_settings(self) -> None:
        if self._cid is None:
            return
        try:
            conv = self.store.get_conversation(self._cid)
        except Exception:  # noqa: BLE001 - deleted meanwhile
            return
        fields = {"system_prompt": self.settings.system_prompt.toPlainText(),
                  "settings": self.settings.settings(), "model_path": self._model_path}
        if any(getattr(conv, k) != v for k, v in fields.items()):
            self.store.update_conversation(self._cid, **fields)

    def _reload_messages(self) -> None:
        self._messages = self.store.messages(self._cid) if self._cid is not None else []
        self._render()
        self._update_buttons()

    def messages(self) -> list:
        return list(self._messages)

    # ---- model ---------------------------------------------------------------------------
    def select_model(self, path) -> None:
        self._model_path = str(path)
        self._restore_picker()

    def _restore_picker(self) -> None:
        row = self.library.model.row_of(self._model_path) if self._model_path else -1
        if row < 0:  # nothing chosen yet: first usable entry
            row = next((r for r, e in enumerate(self.library.model.entries()) if e.info), -1)
            if row >= 0:
                self._model_path = str(self.library.model.entry(row).info.path)
        self.model_picker.setCurrentIndex(row)
        self.plan_preview.request(self._spec())

    def _picker_changed(self, row: int) -> None:
        path = self.model_picker.itemData(row, PATH_ROLE)
        entry = self.library.model.entry(row)
        if entry is not None and entry.info is not None:
            self._model_path = str(entry.info.path)
        elif path:
            self._model_path = path
        self.plan_preview.request(self._spec())

    def _spec(self) -> LoadSpec | None:
        if not self._model_path:
            return None
        values = self.settings.settings()
        return LoadSpec(self._model_path, values["n_ctx"], values["n_gpu_layers"])

    def load_selected_model(self) -> None:
        spec = self._spec()
        if spec is None:
            self._show_error("Pick a model first: the library has none yet.")
            return
        self.engine.load(spec)

    def chat_with(self, path) -> None:
        """Library's "Chat with this": pick the model and start loading it now."""
        self.select_model(path)
        if self._cid is None:
            self.new_conversation()
        self.load_selected_model()

    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._render_pending:
            self._render()

    def shutdown(self) -> None:
        """App exit: keep the settings and whatever of a reply has arrived (marked incomplete)."""
        s = self._stream
        if s is not None:
            self.store.update_message(s.mid, s.text, complete=False)
        self._save_conversation_settings()
