"""Chat page: conversation list, model picker, transcript, composer and settings panel.

A door onto core.runtime: the conversation's rules are ChatSession's (which model it uses among
them), the model's are ModelManager's. This page translates: it saves what the person chose, asks
the session for a reply and runs it through app/bridge.py (run_task) on a one-thread pool, so
loads, replies and unloads happen in the order they were asked; their events come back here on
the GUI thread. The picker always shows the model of the conversation shown; the state line says
what state_line.describe() makes of self._state, which every transition updates.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QTimer, Signal

from quantdesk.app.bridge import run_task, serial_pool
from quantdesk.app.markdown_view import is_dark
from quantdesk.core.engine.types import Token
from quantdesk.core.runtime import (ChatSession, ModelLoaded, ModelLoading, ModelPlanned,
                                    ModelUnloaded)

from . import transcript
from .attachments import ImageAttachments
from .chat_layout import ChatLayout
from .conversation_model import ConversationListModel
from .conversations import ConversationList
from .model_choice import ModelChoice
from .plan_panel import PlanPreview
from .state_line import ChatState, describe, loaded_status


def _store_errors_reported(method):
    """A chat-store failure (database locked by another process, disk full) or a reply the session
    refuses (ChatError) during a user action is shown in the state line instead of escaping the
    Qt slot."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from quantdesk.core.chatstore import ChatStoreError
        from quantdesk.core.runtime import ChatError
        try:
            return method(self, *args, **kwargs)
        except (ChatStoreError, ChatError) as exc:
            self._show_error(str(exc))
            return False
    return wrapper


def _sentence(line: str) -> str:
    return line[:1].upper() + line[1:] + "."


class _Live:
    """The reply on screen while it streams (the Reply itself lives on the pool thread)."""

    def __init__(self, reply, task):
        self.reply, self.task = reply, task
        self.text = ""


class ChatPage(ConversationList, ModelChoice, ImageAttachments, ChatLayout):
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
        self._state = ChatState()
        self._shown_error: str | None = None
        self._editing_mid: int | None = None
        self._draft: tuple[str, list] = ("", [])   # what the composer held before "Edit last"
        self._default_model: str | None = None   # what a new chat gets when no model is given
        self._render_pending = True
        self._render_timer = QTimer(self, singleShot=True, interval=transcript.RENDER_EVERY_MS)
        self._render_timer.timeout.connect(self._render)
        self._tick = QTimer(self, interval=500)
        self._tick.timeout.connect(self._refresh_state)
        self._connect()
        self._init_attachments()
        self._library_changed()
        if self.conversations.rowCount():
            self.select_conversation(self.conversations.conversation(0).id)

    def _connect(self) -> None:
        self.new_button.clicked.connect(lambda: self.new_conversation())
        self.rename_button.clicked.connect(lambda: self.rename_conversation())
        self.delete_button.clicked.connect(lambda: self.delete_conversation())
        self.conversation_view.selectionModel().currentChanged.connect(self._conversation_clicked)
        self.load_button.clicked.connect(self.load_selected_model)
        self.unload_button.clicked.connect(self.unload_model)
        self.model_picker.activated.connect(self._picker_changed)
        self.library.model.modelReset.connect(self._library_changed)
        self.composer.submitted.connect(self.send)
        self.composer.escape_pressed.connect(self.cancel_edit)
        self.send_button.clicked.connect(self.composer.submit)
        self.stop_button.clicked.connect(self.stop)
        self.regen_button.clicked.connect(self.regenerate)
        self.edit_button.clicked.connect(self.edit_last)
        self.plan_preview = PlanPreview(self.plan_panel, self.models, self)
        self.settings.load_settings_changed.connect(self._show_plan)

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
            self._state.notice = (self._state.cid,
                                  "A reply is still coming: wait for it or press Stop.")
            self._refresh_state()
            return False
        problem = self._model_problem()
        if problem is not None:
            self._show_error(problem)
            return False
        if self.session.conversation_id is None:
            self.new_conversation()
        self._adopt_model()
        self._save_conversation_settings()
        reply = self.session.send(text, replace_from=self._editing_mid,
                                  images=self.attachments())
        self.cancel_edit()
        self.composer.clear()
        self.clear_attachments()
        self._start(reply)
        return True

    @_store_errors_reported
    def regenerate(self) -> None:
        if self._live is not None or self.session.conversation_id is None:
            return
        self._adopt_model()
        self._save_conversation_settings()
        reply = self.session.regenerate()
        if reply is not None:
            self._start(reply)

    def edit_last(self) -> None:
        """Put the last user message back in the composer; sending replaces it and what follows."""
        last_user = None if self._live else self.session.last_user_message()
        if last_user is None:
            return
        if self._editing_mid is None:   # the draft the edit replaces comes back on cancel
            self._draft = (self.composer.toPlainText(), self.attachments())
        self._editing_mid = last_user.id
        self.composer.setPlainText(last_user.content)
        self.set_attachments(self.session.message_images(last_user))   # kept unless removed
        self.edit_label.show()
        self.composer.setFocus()

    def cancel_edit(self) -> None:
        if self._editing_mid is not None:
            self._editing_mid = None
            text, images = self._draft
            self.composer.setPlainText(text)   # the edited message goes, the draft comes back
            self.set_attachments(images)
        self.edit_label.hide()

    def stop(self) -> None:
        if self._live is not None:
            self._live.task.cancel()
            self._state.stopping = True
            self._refresh_state()

    def _start(self, reply) -> None:
        task = run_task(self._pool, self, reply.run, on_event=self._on_event,
                        on_finished=self._on_finished, on_failed=self._on_failed,
                        on_cancelled=self._on_cancelled, what="reply")
        self._live = _Live(reply, task)
        self.conversations.reload()
        self.select_conversation(reply.cid)   # a new action: old errors and notices go
        state = self._state
        state.live_cid, state.pieces, state.first_token = reply.cid, 0, None
        state.live_title = self.store.get_conversation(reply.cid).title
        self._refresh_state()
        self.reply_started.emit(reply.mid)

    # ---- events of the job in progress (GUI thread) --------------------------------------
    def _on_event(self, event) -> None:
        state = self._state
        if isinstance(event, Token):
            if self._live is None:
                return
            self._live.text += event.text
            state.pieces += 1
            state.first_token = state.first_token or time.monotonic()
            if not self._render_timer.isActive():
                self._render_timer.start()
            self.token_received.emit(event.text)
            return
        if isinstance(event, ModelLoading):
            state.loading = (Path(event.request.path).name, time.monotonic())
            self.plan_preview.loading(event.request)
        elif isinstance(event, ModelPlanned):
            self.plan_preview.plan_used(event.resolved)
        elif isinstance(event, ModelLoaded):
            state.loading = None
            self.plan_preview.measured(event)
            if self._live is None:
                state.notice = (state.cid, loaded_status(event.result, event.resolved.note))
            if not (event.reused and self._live is not None):  # a reply on the loaded model
                self.model_loaded.emit(event.result)
        elif isinstance(event, ModelUnloaded):
            self.plan_preview.unloaded(event.path)
            if self._live is None:
                state.notice = (state.cid, "Model unloaded: its memory is back to the system.")
        self._refresh_state()

    def _end_reply(self):
        live, self._live = self._live, None
        state = self._state
        state.live_cid, state.stopping, state.loading = None, False, None
        if live is not None and live.reply.cid == self.session.conversation_id:
            self._reload_messages()
        return live

    def _on_finished(self, done) -> None:
        self._end_reply()
        self._refresh_state()
        self.reply_finished.emit(done)

    def _on_cancelled(self) -> None:
        live = self._end_reply()
        done = live.reply.done if live else None
        if done is None or not live.reply.text:  # stopped before the model said anything
            self._state.notice = (live.reply.cid if live else self._state.cid, "Stopped.")
        self._refresh_state()
        if done is not None:
            self.reply_finished.emit(done)

    def _on_failed(self, message: str) -> None:
        live = self._end_reply()
        self._state.error = (live.reply.cid if live else self._state.cid, message)
        self._render()
        self._refresh_state()
        self.reply_failed.emit(message)

    def _on_load_failed(self, cid, message: str) -> None:
        self._state.loading = None
        self._state.error = (cid, message)
        self._render()
        self._refresh_state()
        self.reply_failed.emit(message)

    def _show_error(self, message: str) -> None:
        self._state.error = (self._state.cid, message)
        self._render()
        self._refresh_state()

    # ---- view ----------------------------------------------------------------------------
    def _refresh_state(self) -> None:
        """The state line, the busy indicator and the buttons, from self._state."""
        state = self._state
        request = self.load_request()
        host = self.models.find(request) if request is not None else None
        state.loaded = loaded_status(host.result, host.resolved.note) if host else ""
        model = self.current_model()
        state.idle = (_sentence(model.missing_message()) if model.missing
                      else f"{model.name} loads when you send." if model.path
                      else "No model loaded.")
        self.status.setText(describe(state, time.monotonic()))
        self.progress.setVisible(state.loading is not None)
        active = state.loading is not None or state.live_cid is not None
        if active and not self._tick.isActive():
            self._tick.start()
        elif not active:
            self._tick.stop()
        if state.error_here() != self._shown_error:
            self._render()
        self._update_buttons()

    def _render(self) -> None:
        if not self.isVisible():  # rendered on show: keeps markdown/Pygments out of startup
            self._render_pending = True
            return
        self._render_pending = False
        live = self._live
        self._shown_error = self._state.error_here()
        self.view.set_transcript(transcript.transcript_html(
            self._messages, live.reply.mid if live else None, live.text if live else "",
            self._shown_error, is_dark(self), self._reasoning()))

    def _reasoning(self):
        """(ReasoningFormat or None, block opened in the prompt) of the shown chat's model, read
        from its chat template as the API server reads it (cached per template)."""
        from quantdesk.core.engine.reasoning import reasoning_of
        model = self.current_model()
        row = self.library.model.row_of(model.path) if model.path else -1
        entry = self.library.model.entry(row) if row >= 0 else None
        return reasoning_of(entry.info.chat_template if entry is not None and entry.info else None)

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

    def changeEvent(self, event):  # noqa: N802 - Qt override
        super().changeEvent(event)
        # The theme changed: the transcript's colours are in its HTML, so it is drawn again.
        if event.type() == QEvent.Type.PaletteChange:
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
