"""The chat page's conversations: new, rename, delete, select (part of ChatPage).

Selecting a conversation shows its messages, settings and model; the conversation never follows
the picker unless the person switches its model (model_choice.py).
"""
from __future__ import annotations

from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import QMessageBox

from quantdesk.core.runtime.chat import chosen_load_defaults, model_load_settings

from .conversation_model import ID_ROLE


class ConversationList:
    """ChatPage's conversation methods; the state they use is set up by ChatPage.__init__."""

    def current_conversation_id(self) -> int | None:
        return self.session.conversation_id

    def new_conversation(self, model_path=None) -> int:
        """A new chat with `model_path`, or the model shown now; the system prompt and settings
        shown now come along."""
        self._save_conversation_settings()
        if model_path is not None:
            self._default_model = str(model_path)
        model = self.current_model()
        path = str(model_path) if model_path is not None else (
            model.path if model.path and not model.missing else self._default_model)
        cid = self.session.new_conversation(
            system_prompt=self.settings.system_prompt.toPlainText(),
            model_path=path,
            # load settings the user chose on the Settings page win over the panel's, and the
            # ones the library keeps for this model (Library > Load settings…) win over both
            settings={**self.settings.settings(), **chosen_load_defaults(),
                      **model_load_settings(path)})
        self.conversations.reload()
        self.session.conversation_id = None  # select_conversation switches to it
        self.select_conversation(cid)
        self.composer.setFocus()
        return cid

    def rename_conversation(self, title: str | None = None, cid: int | None = None) -> None:
        """Rename `cid` (default: the conversation shown); no title: edit it in place."""
        if cid is not None and cid != self.session.conversation_id:
            self.select_conversation(cid)
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

    def delete_conversation(self, cid: int | None = None) -> None:
        """Delete `cid` (default: the conversation shown) after asking; not while it streams."""
        if cid is not None and cid != self.session.conversation_id:
            self.select_conversation(cid)
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
        """Show `cid`: its messages, settings and model (the picker follows the conversation;
        the conversation never follows the picker unless the person switches it)."""
        if cid != self.session.conversation_id:
            self._save_conversation_settings()
        self.session.conversation_id = self._state.cid = cid
        self._state.clear_messages()
        self.cancel_edit()
        row = self.conversations.row_of(cid) if cid is not None else -1
        if row >= 0:
            self.conversation_view.selectionModel().blockSignals(True)
            self.conversation_view.setCurrentIndex(self.conversations.index(row))
            self.conversation_view.selectionModel().blockSignals(False)
        if cid is not None:
            self.conversations.refresh(cid)   # its model file may have gone meanwhile
            conv = self.store.get_conversation(cid)
            self.settings.system_prompt.setPlainText(conv.system_prompt or "")
            self.settings.set_settings(conv.settings or {})
        self._show_model()
        self._reload_messages()

    def _save_conversation_settings(self) -> None:
        """The system prompt and settings shown go with the conversation (its model is changed
        only by select_model)."""
        cid = self.session.conversation_id
        if cid is None:
            return
        try:
            conv = self.store.get_conversation(cid)
        except KeyError:  # deleted meanwhile
            return
        fields = {"system_prompt": self.settings.system_prompt.toPlainText(),
                  "settings": self.settings.settings()}
        if any(getattr(conv, k) != v for k, v in fields.items()):
            self.store.update_conversation(cid, **fields)

    def _reload_messages(self) -> None:
        self._messages = self.session.messages()
        last = next((m for m in reversed(self._messages) if m.role == "assistant"), None)
        self._state.last_stats = last.stats if last is not None else None
        self._render()
        self._refresh_state()

    def messages(self) -> list:
        return list(self._messages)
