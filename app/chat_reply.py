"""Sending a message and streaming the reply (the behaviour half of ChatPage).

A reply in flight is saved every half second marked incomplete, so a crash loses at most that
last half second, then finalised with its stats. Tokens are shown as they come; the transcript
is re-rendered at most every RENDER_EVERY_MS so fast models do not flood the GUI thread.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

from .markdown_view import error_html, message_html

SAVE_EVERY_S = 0.5
RENDER_EVERY_MS = 80


def _store_errors_reported(method):
    """A chat-store failure (database locked by another process, disk full) during a user action
    or a streaming slot is shown in the status line instead of escaping the Qt slot."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from quantdesk.core.chatstore import ChatStoreError
        try:
            return method(self, *args, **kwargs)
        except ChatStoreError as exc:
            self._show_error(str(exc))
            return False
    return wrapper


def close_open_fence(text: str) -> str:
    """A reply cut mid code block renders as a code block, not as run-on text."""
    fences = sum(1 for line in text.splitlines() if line.lstrip().startswith("```"))
    return text + "\n```" if fences % 2 else text


class _Stream:
    """The reply being generated."""

    def __init__(self, request_id: int, cid: int, mid: int):
        self.request_id, self.cid, self.mid = request_id, cid, mid
        self.text = ""
        self.pieces = 0
        self.started = time.monotonic()
        self.first_token: float | None = None
        self.saved_at = self.started


class ReplyMixin:
    # ---- user actions --------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self._stream is not None

    @_store_errors_reported
    def send(self, text: str) -> bool:
        """Add the user's message and start the reply. False (text kept) when it cannot start."""
        text = text.strip()
        if not text:
            return False
        if self._stream is not None:
            self.status.setText("A reply is still coming: wait for it or press Stop.")
            return False
        if self._spec() is None:
            self._show_error("Pick a model first: the library has none yet.")
            return False
        if self._cid is None:
            self.new_conversation()
        if self._editing_mid is not None:
            self.store.delete_messages_from(self._cid, self._editing_mid)
            self.cancel_edit()
        conv = self.store.get_conversation(self._cid)
        if conv.title == "New chat" and not any(m.role == "user" for m in self._messages):
            self.store.update_conversation(self._cid, title=text.splitlines()[0][:48])
        self.store.add_message(self._cid, "user", text)
        self.composer.clear()
        self._start_reply()
        return True

    @_store_errors_reported
    def regenerate(self) -> None:
        if self._stream is not None or self._cid is None:
            return
        last = self._messages[-1] if self._messages else None
        if last is not None and last.role == "assistant":
            self.store.delete_messages_from(self._cid, last.id)
        if any(m.role == "user" for m in self.store.messages(self._cid)):
            self._start_reply()

    def edit_last(self) -> None:
        """Put the last user message back in the composer; sending replaces it and what follows."""
        if self._stream is not None:
            return
        last_user = next((m for m in reversed(self._messages) if m.role == "user"), None)
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
        if self._stream is not None:
            self.engine.cancel(self._stream.request_id)
            self.status.setText("Stopping…")

    # ---- the reply -----------------------------------------------------------------------
    def _engine_messages(self) -> list[dict]:
        out = []
        system = self.settings.system_prompt.toPlainText().strip()
        if system:
            out.append({"role": "system", "content": system})
        out += [{"role": m.role, "content": m.content}
                for m in self.store.messages(self._cid) if m.content and m.role != "system"]
        return out

    def _start_reply(self) -> None:
        self._save_conversation_settings()
        spec = self._spec()
        messages = self._engine_messages()
        reply = self.store.add_message(self._cid, "assistant", "", complete=False)
        request_id = self.engine.chat(spec, messages, self.settings.sampling_params())
        self._stream = _Stream(request_id, self._cid, reply.id)
        self._error = None
        self.conversations.reload()
        self.select_conversation(self._cid)
        self._tick.start()
        self.reply_started.emit(reply.id)

    @_store_errors_reported
    def _on_token(self, request_id: int, text: str) -> None:
        s = self._stream
        if s is None or request_id != s.request_id:
            return
        s.text += text
        s.pieces += 1
        now = time.monotonic()
        if s.first_token is None:
            s.first_token = now
        if now - s.saved_at >= SAVE_EVERY_S:
            self.store.update_message(s.mid, s.text, complete=False)
            s.saved_at = now
        if not self._render_timer.isActive():
            self._render_timer.start()
        self.token_received.emit(text)

    @_store_errors_reported
    def _on_finished(self, request_id: int, done) -> None:
        s = self._stream
        if s is None or request_id != s.request_id:
            return
        self._stream = None
        self._tick.stop()
        stats = {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
                 "tokens_per_second": done.tokens_per_second,
                 "finish_reason": done.finish_reason, "n_ctx": done.n_ctx,
                 "used_chat_template": done.used_chat_template,
                 "model": Path(self._model_path or "").name}
        if done.finish_reason == "cancelled" and not s.text:
            self.store.delete_messages_from(s.cid, s.mid)  # nothing was said: leave no husk
        else:
            self.store.update_message(s.mid, s.text, complete=True, stats=stats)
        used = done.prompt_tokens + done.completion_tokens
        ended = {"stop": "", "length": " · stopped at max tokens",
                 "cancelled": " · stopped"}.get(done.finish_reason, "")
        template = "" if done.used_chat_template else " · no chat template: plain completion"
        self.status.setText(f"{done.tokens_per_second:.1f} tokens/s · context used {used} / "
                            f"{done.n_ctx}{ended}{template}")
        if s.cid == self._cid:
            self._reload_messages()
        self._update_buttons()
        self.reply_finished.emit(done)

    @_store_errors_reported
    def _on_failed(self, request_id: int, message: str) -> None:
        self._loading_since = None
        self.progress.hide()
        s = self._stream
        if request_id == 0:  # a bare Load failed
            self._show_error(message)
            self.reply_failed.emit(message)
            return
        if s is None or request_id != s.request_id:
            return
        if s is not None:
            self._stream = None
            self._tick.stop()
            if s.text:
                self.store.update_message(s.mid, s.text, complete=False, stats={"error": message})
            else:
                self.store.delete_messages_from(s.cid, s.mid)
            if s.cid == self._cid:
                self._reload_messages()
        self._show_error(message)
        self.reply_failed.emit(message)

    def _show_error(self, message: str) -> None:
        self._error = message
        self.status.setText(f"Error: {message}")
        self._render()
        self._update_buttons()

    # ---- engine state --------------------------------------------------------------------
    def _on_loading(self, path: str) -> None:
        self._loading_since = time.monotonic()
        self.progress.show()
        self.status.setText(f"Loading {Path(path).name}…")
        self._tick.start()

    def _on_loaded(self, result) -> None:
        self._loading_since = None
        self.progress.hide()
        plan = f" ({self._plan_note})" if self._plan_note else ""
        self._plan_note = ""
        self.status.setText(f"Loaded {Path(result.path).name} in {result.load_seconds:.1f} s · "
                            f"context {result.n_ctx} · GPU layers {result.n_gpu_layers}{plan}")
        self.model_loaded.emit(result)

    def _on_planned(self, note: str) -> None:
        self._plan_note = note

    def _on_unloaded(self) -> None:
        self.status.setText("Model unloaded: its memory is back to the system.")

    def _update_live_status(self) -> None:
        if self._loading_since is not None:
            self.status.setText(f"Loading model… {time.monotonic() - self._loading_since:.0f} s")
            return
        s = self._stream
        if s is None:
            self._tick.stop()
            return
        if s.first_token is None:
            self.status.setText("Reading the prompt…")
            return
        elapsed = max(time.monotonic() - s.first_token, 1e-3)
        rate = (s.pieces - 1) / elapsed if s.pieces > 1 else 0.0
        self.status.setText(f"Generating… {s.pieces} tokens · {rate:.1f} tokens/s")

    # ---- view ----------------------------------------------------------------------------
    def _render(self) -> None:
        if not self.isVisible():  # rendered on show: keeps markdown/Pygments out of startup
            self._render_pending = True
            return
        self._render_pending = False
        parts = []
        s = self._stream
        for m in self._messages:
            if s is not None and m.id == s.mid:
                parts.append(message_html("assistant", close_open_fence(s.text), "generating…"))
                continue
            stats = m.stats or {}
            if not m.complete:
                note = "(incomplete)"
            elif stats.get("finish_reason") == "cancelled":
                note = "(stopped)"
            elif "tokens_per_second" in stats:
                note = f"{stats['tokens_per_second']:.1f} tokens/s"
            else:
                note = ""
            parts.append(message_html(m.role, close_open_fence(m.content), note))
        if self._error:
            parts.append(error_html(self._error))
        if not parts:
            parts.append('<p style="color:#7a8494">Pick a model above, type a message below, '
                         'press Enter.</p>')
        self.view.set_transcript("".join(parts))

    def _update_buttons(self) -> None:
        busy = self._stream is not None
        has_user = any(m.role == "user" for m in self._messages)
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.regen_button.setEnabled(not busy and has_user)
        self.edit_button.setEnabled(not busy and has_user)
        self.delete_button.setEnabled(self._cid is not None and not busy)
        self.rename_button.setEnabled(self._cid is not None)
