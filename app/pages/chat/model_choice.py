"""Which model the chat page shows and loads (part of ChatPage).

The rule is core.runtime.chat's: a conversation uses the model stored with it. The picker shows
that model; choosing another one in it switches the conversation (asked first when it already has
replies); a conversation whose file is gone says so and plans, loads and sends nothing.
A conversation that gets a model (new chat, switch) starts from the load settings the library
keeps for it (Library > Load settings…), over the user's defaults.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from quantdesk.app.bridge import run_task
from quantdesk.app.pages.library.library_model import PATH_ROLE
from quantdesk.core.runtime import ConversationModel, load_request

NO_MODEL = "Pick a model first: the library has none yet."


class ModelChoice:
    """ChatPage's model methods; the state they use is set up by ChatPage.__init__."""

    def current_model(self) -> ConversationModel:
        """The model of the conversation shown; with none shown (or none chosen for it yet),
        the one a new chat would get."""
        model = self.session.model()
        return model if model.path else ConversationModel(self._default_model)

    def select_model(self, path) -> None:
        """Make `path` the model of the conversation shown, from its next reply on, and of the
        next new chat: a deliberate switch (the picker asks first when the chat has replies)."""
        path = str(path)
        self._default_model = path
        cid = self.session.conversation_id
        if cid is not None and self.session.model().path != path:
            self._switch_conversation_model(path)
            self.conversations.refresh(cid)
            self._state.clear_messages()
            self._state.notice = (cid, f"This chat now uses {Path(path).name}.")
        self._show_model()
        self._render()

    def _picker_changed(self, row: int) -> None:
        entry = self.library.model.entry(row)
        path = (str(entry.info.path) if entry is not None and entry.info is not None
                else self.model_picker.itemData(row, PATH_ROLE))
        current = self.session.model()
        if not path or path == current.path:
            self._show_model()
            return
        if current.path and not current.missing and self.session.has_replies():
            old, new = current.name, Path(path).name
            if not self.ask_confirmation(
                    f"Switch this chat from {old} to {new}?\n\nIts replies so far came from "
                    f"{old}; the next ones will come from {new}."):
                self._show_model()   # the picker goes back to the chat's model
                return
        self.select_model(path)

    def _library_changed(self) -> None:
        """The library was listed again: a new chat's default model is its first usable entry
        when none was chosen (a conversation's own model is never replaced)."""
        default = ConversationModel(self._default_model)
        if default.path is None or default.missing:
            first = next((e for e in self.library.model.entries() if e.info), None)
            self._default_model = str(first.info.path) if first is not None else None
        self._show_model()

    def _show_model(self) -> None:
        """Picker, warning and plan panel: the model of the conversation shown."""
        model = self.current_model()
        row = self.library.model.row_of(model.path) if model.path else -1
        self.model_picker.setPlaceholderText(
            model.describe() if model.path else "No model in the library yet")
        self.model_picker.setCurrentIndex(row)
        self.model_picker.setToolTip(model.path or "")
        self.model_warning.setText(f"The model file of this chat is gone: {model.path}. "
                                   "Pick another model to go on." if model.missing else "")
        self.model_warning.setVisible(model.missing)
        self._show_plan()
        self._refresh_state()

    def _show_plan(self) -> None:
        missing = self.current_model().missing
        self.plan_preview.request(self.load_request(), "The model file is gone: nothing to plan."
                                  if missing else "Pick a model to see what it needs.")

    def load_request(self):
        """The LoadRequest the settings panel describes (None: no model, or its file is gone)."""
        model = self.current_model()
        if model.path is None or model.missing:
            return None
        return load_request(model.path, self.settings.settings())

    def _model_problem(self) -> str | None:
        model = self.current_model()
        if model.path is None:
            return NO_MODEL
        return model.missing_message() if model.missing else None

    def load_selected_model(self) -> None:
        request = self.load_request()
        if request is None:
            self._show_error(self._model_problem() or NO_MODEL)
            return
        cid = self.session.conversation_id
        self._state.clear_messages()
        self._state.loading = (Path(request.path).name, time.monotonic())
        self._render()
        self._refresh_state()
        run_task(self._pool, self, lambda report, _cancel: self.models.load(request, report),
                 on_event=self._on_event, on_failed=lambda m: self._on_load_failed(cid, m),
                 what="load")

    def unload_model(self) -> None:
        run_task(self._pool, self, lambda report, _cancel: self.models.unload(report=report),
                 on_event=self._on_event, what="unload")

    def chat_with(self, path) -> None:
        """"Chat with this" (Library) and "Chat with it" (Quantize): a NEW conversation with
        that model (the one shown keeps its own), and the model starts loading now."""
        self.new_conversation(model_path=path)
        self.load_selected_model()

    def _adopt_model(self) -> None:
        """A chat made while the library was empty gets the model shown when it first sends."""
        if self.session.model().path is None and self._default_model:
            self._switch_conversation_model(self._default_model)
            self.conversations.refresh(self.session.conversation_id)

    def model_settings_saved(self, path, stored: dict) -> None:
        """Library > Load settings… saved `stored` for the model at `path`: the chat shown, when
        it uses that model, takes them now for its next load (the person just chose them for this
        model); other chats keep their own until they are switched to it."""
        model = self.current_model()
        same = model.path and os.path.normcase(os.path.abspath(model.path)) == \
            os.path.normcase(os.path.abspath(str(path)))
        if not stored or not same or self._live is not None:
            return
        self.settings.set_settings({**self.settings.settings(), **stored})
        self._save_conversation_settings()
        self._state.notice = (self._state.cid, f"This chat now uses the load settings saved for "
                                               f"{model.name}: they apply at its next load.")
        self._refresh_state()

    def _switch_conversation_model(self, path) -> None:
        """The switch takes the model's stored load settings (ChatSession.switch_model): the
        panel's edits are saved first and the panel then shows what the conversation has."""
        self._save_conversation_settings()
        self.session.switch_model(path)
        self.settings.set_settings(self.session.conversation().settings or {})
