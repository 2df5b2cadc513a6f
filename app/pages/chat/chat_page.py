"""Chat page: conversation list, model picker, transcript, composer and settings panel.

A door onto core.runtime: the conversation's rules are ChatSession's, the model's are
ModelManager's. This page translates: it saves what the person chose, asks the session for a
reply and runs it through app/bridge.py (run_task) on a one-thread pool, so loads, replies and
unloads happen in the order they were asked; their events come back here on the GUI thread.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

from PySide6.QtCore import QModelIndex, QTimer, Signal
from PySide6.QtWidgets import QMessageBox

from quantdesk.app.bridge import run_task, serial_pool
from quantdesk.app.pages.library.library_model import PATH_ROLE
from quantdesk.core.engine.types import Token
from quantdesk.core.runtime.chat import chosen_load_defaults
from quantdesk.core.runtime import (ChatSession, ModelLoaded, ModelLoading, ModelPlanned,
                                    ModelUnloaded, load_request)

from . import transcript
from .chat_layout import ChatLayout
from .conversation_model import ID_ROLE, ConversationListModel
from .plan_panel import PlanPreview

NO_MODEL = "Pick a model first: the library has none yet."


def _store_errors_reported(method):
    """A chat-store failure (database locked by another process, disk full) during a user action
    is shown in the status line instead of escaping the Qt slot."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from quantdesk.core.chatstore import ChatStoreError
        try:
            return method(self, *args, **kwargs)
        except ChatStoreError as exc:
            self._show_error(str(exc))
            return False
    return wrapper


class _Live:
    """The reply on screen while it streams (the Reply itself lives on the pool thread)."""

    def __init__(self, reply, task):
        self.reply, self.task = reply, task
        self.text, self.pieces, self.first_token = "", 0, None


class ChatPage(ChatLayout):
    reply_started = Signal(int)        # message id of the new assistant reply
    token_received = Signal(str)
    reply_finished = Signal(object)    # Done
    reply_failed = Signal(str)
    model_loaded = Signal(object)      # LoadResult

    def __init__(self, library_service, models, parent=None):
        from quantdesk.core.chatstore import ChatStore, ChatStoreError
        store_error = None
        try:
            store = ChatStore()
        except ChatStoreError as exc:  # unreadable history: keep it untouched, chat in memory
            store_error = f"{exc}. Chats in this session will not be saved."
            store = ChatStore(Path(":memory:"))
        conversations = ConversationListModel(store)
        super().__init__(conversations, library_service.model, parent)
        conversations.setParent(self)
        self.store, self.store_error, self.conversations = store, store_error, conversations
        self.models = models
        self.session = ChatSession(self.store, models)
        self.library = library_service
        self._pool = serial_pool(self)
        self._messages: list = []
        self._live: _Live | None = None
        self._error: str | None = None
        self._editing_mid: int | None = None
        self._model_path: str | None = None
        self._loading_since: float | None = None
        self._render_pending = True
        self._plan_note = ""
        self._connect()
        self._render_timer = QTimer(self, singleShot=True, interval=transcript.RENDER_EVERY_MS)
        self._render_timer.timeout.connect(self._render)
        self._tick = QTimer(self, interval=500)
        self._tick.timeout.connect(self._update_live_status)
        if self.conversations.rowCount():
            self.select_conversation(self.conversations.conversation(0).id)
        self._update_buttons()

    def _connect(self) -> None:
        self.new_button.clicked.connect(self.new_conversation)
        self.rename_button.clicked.connect(lambda: self.rename_conversation())
        self.delete_button.clicked.connect(self.delete_conversation)
        self.conversation_view.selectionModel().currentChanged.connect(self._conversation_clicked)
        self.load_button.clicked.connect(self.load_selected_model)
        self.unload_button.clicked.connect(self.unload_model)
        self.model_picker.activated.connect(self._picker_changed)
        self.library.model.modelReset.connect(self._restore_picker)
        self.composer.submitted.connect(self.send)
        self.composer.escape_pressed.connect(self.cancel_edit)
        self.send_button.clicked.connect(self.composer.submit)
        self.stop_button.clicked.connect(self.stop)
        self.regen_button.clicked.connect(self.regenerate)
        self.edit_button.clicked.connect(self.edit_last)
        self.plan_preview = PlanPreview(self.plan_panel, self.models, self)
        self.settings.load_settings_changed.connect(
            lambda: self.plan_preview.request(self.load_request()))

    # ---- conversations -------------------------------------------------------------------
    def current_conversation_id(self) -> int | None:
        return self.session.conversation_id

    def new_conversation(self) -> int:
        self._save_conversation_settings()
        # A new chat starts with the current model, system prompt and sampling; its load
        # settings (threads, context, GPU layers) are the user's choices on the Settings page
        # where they made one.
        cid = self.session.new_conversation(
            system_prompt=self.settings.system_prompt.toPlainText(),
            model_path=self._model_path,
            settings={**self.settings.settings(), **chosen_load_defaults()})
        self.conversations.reload()
        self.session.conversation_id = None  # select_conversation switches to it
        self.select_conversation(cid)
        self.composer.setFocus()
        return cid

    def rename_conversation(self, title: str | None = None) -> None:
        cid = self.session.conversation_id
        row = self.conversations.row_of(cid) if cid is not None else -1
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
        cid = self.session.conversation_id
        if cid is None or (self._live and self._live.reply.cid == cid):
            return
        conv = self.store.get_conversation(cid)
        if not self.ask_confirmation(f"Delete the conversation “{conv.title}”?"):
            return
        self.store.delete_conversation(cid)
        self.session.conversation_id = None
        self.conversations.reload()
        first = self.conversations.conversation(0)
        self.select_conversation(first.id if first else None)

    def _conversation_clicked(self, current: QModelIndex, _previous=None) -> None:
        cid = current.data(ID_ROLE) if current.isValid() else None
        if cid is not None and cid != self.session.conversation_id:
            self.select_conversation(cid)

    def select_conversation(self, cid: int | None) -> None:
        if cid != self.session.conversation_id:
            self._save_conversation_settings()
        self.session.conversation_id, self._error = cid, None
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
        cid = self.session.conversation_id
        if cid is None:
            return
        try:
            conv = self.store.get_conversation(cid)
        except KeyError:  # deleted meanwhile
            return
        fields = {"system_prompt": self.settings.system_prompt.toPlainText(),
                  "settings": self.settings.settings(), "model_path": self._model_path}
        if any(getattr(conv, k) != v for k, v in fields.items()):
            self.store.update_conversation(cid, **fields)

    def _reload_messages(self) -> None:
        self._messages = self.session.messages()
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
        self.plan_preview.request(self.load_request())

    def _picker_changed(self, row: int) -> None:
        path = self.model_picker.itemData(row, PATH_ROLE)
        entry = self.library.model.entry(row)
        if entry is not None and entry.info is not None:
            self._model_path = str(entry.info.path)
        elif path:
            self._model_path = path
        self.plan_preview.request(self.load_request())

    def load_request(self):
        """The LoadRequest the settings panel describes (None: no model chosen)."""
        if not self._model_path:
            return None
        return load_request(self._model_path, self.settings.settings())

    def load_selected_model(self) -> None:
        request = self.load_request()
        if request is None:
            self._show_error(NO_MODEL)
            return
        run_task(self._pool, self, lambda report, _cancel: self.models.load(request, report),
                 on_event=self._on_event, on_failed=self._on_load_failed, what="load")

    def unload_model(self) -> None:
        run_task(self._pool, self, lambda report, _cancel: self.models.unload(report=report),
                 on_event=self._on_event, what="unload")

    def chat_with(self, path) -> None:
        """Library's "Chat with this": pick the model and start loading it now."""
        self.select_model(path)
        if self.session.conversation_id is None:
            self.new_conversation()
        self.load_selected_model()

    # ---- sending -------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self._live is not None

    @_store_errors_reported
    def send(self, text: str) -> bool:
        """Add the user's message and start the reply. False (text kept) when it cannot start."""
        text = text.strip()
        if not text:
            return False
        if self._live is not None:
            self.status.setText("A reply is still coming: wait for it or press Stop.")
            return False
        if self.load_request() is None:
            self._show_error(NO_MODEL)
            return False
        if self.session.conversation_id is None:
            self.new_conversation()
        self._save_conversation_settings()
        reply = self.session.send(text, replace_from=self._editing_mid)
        self.cancel_edit()
        self.composer.clear()
        self._start(reply)
        return True

    @_store_errors_reported
    def regenerate(self) -> None:
        if self._live is not None or self.session.conversation_id is None:
            return
        self._save_conversation_settings()
        reply = self.session.regenerate()
        if reply is not None:
            self._start(reply)

    def edit_last(self) -> None:
        """Put the last user message back in the composer; sending replaces it and what follows."""
        last_user = None if self._live else self.session.last_user_message()
        if last_user is None:
            return
        self._editing_mid = last_user.id
        self.composer.setPlainText(last_user.content)
        self.edit_label.show()
        self.composer.setFocus()

    def cancel_edit(self) -> None:
        if self._editing_mid is not None:
            self._editing_mid = None
            self.composer.clear()
        self.edit_label.hide()

    def stop(self) -> None:
        if self._live is not None:
            self._live.task.cancel()
            self.status.setText("Stopping…")

    def _start(self, reply) -> None:
        task = run_task(self._pool, self, reply.run, on_event=self._on_event,
                        on_finished=self._on_finished, on_failed=self._on_failed,
                        on_cancelled=self._on_cancelled, what="reply")
        self._live = _Live(reply, task)
        self._error = None
        self.conversations.reload()
        self.select_conversation(reply.cid)
        self._tick.start()
        self.reply_started.emit(reply.mid)

    # ---- events of the job in progress (GUI thread) --------------------------------------
    def _on_event(self, event) -> None:
        if isinstance(event, Token):
            live = self._live
            if live is None:
                return
            live.text += event.text
            live.pieces += 1
            live.first_token = live.first_token or time.monotonic()
            if not self._render_timer.isActive():
                self._render_timer.start()
            self.token_received.emit(event.text)
        elif isinstance(event, ModelLoading):
            self._loading_since = time.monotonic()
            self.progress.show()
            self.status.setText(f"Loading {Path(event.request.path).name}…")
            self.plan_preview.loading()
            self._tick.start()
        elif isinstance(event, ModelPlanned):
            self._plan_note = event.resolved.note
            self.plan_preview.plan_used(event.resolved)
        elif isinstance(event, ModelLoaded):
            if event.reused and self._live is not None:
                return  # a reply on the model already loaded: nothing to announce
            self._loading_since = None
            self.progress.hide()
            self.status.setText(transcript.loaded_status(event.result, self._plan_note))
            self._plan_note = ""
            if not event.reused:
                self.plan_preview.measured(event.result, event.vram_growth)
            self.model_loaded.emit(event.result)
        elif isinstance(event, ModelUnloaded):
            self.status.setText("Model unloaded: its memory is back to the system.")
            self.plan_preview.unloaded()

    def _end_reply(self):
        live, self._live = self._live, None
        self._tick.stop()
        self._loading_since = None
        self.progress.hide()
        if live is not None and live.reply.cid == self.session.conversation_id:
            self._reload_messages()
        self._update_buttons()
        return live

    def _on_finished(self, done) -> None:
        self._end_reply()
        self.status.setText(transcript.finished_status(done))
        self.reply_finished.emit(done)

    def _on_cancelled(self) -> None:
        live = self._end_reply()
        done = live.reply.done if live else None
        if done is None:  # stopped before the model answered at all
            self.status.setText("Stopped.")
            return
        self.status.setText(transcript.finished_status(done))
        self.reply_finished.emit(done)

    def _on_failed(self, message: str) -> None:
        self._end_reply()
        self._show_error(message)
        self.reply_failed.emit(message)

    def _on_load_failed(self, message: str) -> None:
        self._loading_since = None
        self.progress.hide()
        self._show_error(message)
        self.reply_failed.emit(message)

    def _show_error(self, message: str) -> None:
        self._error = message
        self.status.setText(f"Error: {message}")
        self._render()
        self._update_buttons()

    def _update_live_status(self) -> None:
        if self._loading_since is not None:
            self.status.setText(f"Loading model… {time.monotonic() - self._loading_since:.0f} s")
        elif self._live is None:
            self._tick.stop()
        else:
            self.status.setText(transcript.generating_status(
                self._live.pieces, self._live.first_token, time.monotonic()))

    # ---- view ----------------------------------------------------------------------------
    def _render(self) -> None:
        if not self.isVisible():  # rendered on show: keeps markdown/Pygments out of startup
            self._render_pending = True
            return
        self._render_pending = False
        live = self._live
        self.view.set_transcript(transcript.transcript_html(
            self._messages, live.reply.mid if live else None, live.text if live else "",
            self._error))

    def _update_buttons(self) -> None:
        busy = self._live is not None
        has_user = any(m.role == "user" for m in self._messages)
        cid = self.session.conversation_id
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.regen_button.setEnabled(not busy and has_user)
        self.edit_button.setEnabled(not busy and has_user)
        self.delete_button.setEnabled(cid is not None and not busy)
        self.rename_button.setEnabled(cid is not None)

    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._render_pending:
            self._render()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """App exit: stop the reply, keep what of it has arrived (marked incomplete) and the
        settings. The window then shuts the model manager down (which ends a load in progress)."""
        live = self._live
        if live is not None:
            live.task.cancel()
        self._pool.waitForDone(wait_ms)
        if live is not None:
            live.reply.save_partial()
        self._save_conversation_settings()
        self.plan_preview.wait_idle(wait_ms)
