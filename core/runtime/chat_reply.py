"""Reply: one assistant reply streaming into the chat store (ChatSession.send and regenerate
make it, with its row already stored, empty and incomplete).

It is saved every SAVE_EVERY_S seconds marked incomplete (a crash loses at most that), then
finalised with its stats; a cancelled reply that said nothing leaves no row; a failed one keeps
what arrived (incomplete, with the error) or leaves no row. It runs as a core job,
`Reply.run(report, cancel) -> Done`, or as a generator, `Reply.events(cancel)`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from quantdesk.core.engine.types import Done, SamplingParams, Token

from .models import LoadRequest, ModelManager

SAVE_EVERY_S = 0.5


class Reply:
    """One assistant reply: its (already stored, empty, incomplete) message and its stream."""

    def __init__(self, store, models: ModelManager, cid: int, mid: int, request: LoadRequest,
                 params: SamplingParams, messages, clock=time.monotonic):
        self.store, self.models = store, models
        self.cid, self.mid = cid, mid
        self.request, self.params = request, params
        # a list, or a function that builds it: the conversation's stored images are read in the
        # job's thread, not in the caller's (the window's GUI thread)
        self._messages = messages
        self._clock = clock
        self.text = ""
        self.pieces = 0
        self.started = clock()
        self.first_token: float | None = None
        self.saved_at = self.started
        self.host = None            # the ModelHost that answered (its .resolved is the plan used)
        self.done: Done | None = None

    @property
    def messages(self) -> list[dict]:
        """What the engine gets (built on first use)."""
        if callable(self._messages):
            self._messages = self._messages()
        return self._messages

    def run(self, report: Callable[[object], None], cancel) -> Done:
        """The core job: load if needed, stream, save. Events reach `report` as they happen
        (the load's too). Returns the reply's Done; raises EngineError (the row is settled)."""
        try:
            _ = self.messages             # read now, before a load that may take a while
            self.host = self.models.load(self.request, report=report)
            for event in self._stream(cancel):
                report(event)
        except BaseException as exc:
            self._fail(exc)
            raise
        return self.done

    def events(self, cancel=None) -> Iterator[object]:
        """The same as a generator: the load's events (after the load), then Token pieces;
        self.done is set when it ends."""
        try:
            _ = self.messages
            loading: list = []
            self.host = self.models.load(self.request, report=loading.append)
            yield from loading
            yield from self._stream(cancel)
        except BaseException as exc:
            self._fail(exc)
            raise

    def _stream(self, cancel) -> Iterator[Token]:
        for event in self.host.generate(self.messages, self.params, cancel):
            if isinstance(event, Token):
                self._add(event.text)
                yield event
            else:
                self._finish(event)

    def _add(self, piece: str) -> None:
        self.text += piece
        self.pieces += 1
        now = self._clock()
        if self.first_token is None:
            self.first_token = now
        if now - self.saved_at >= SAVE_EVERY_S:
            self.store.update_message(self.mid, self.text, complete=False)
            self.saved_at = now

    def stats(self, done: Done) -> dict:
        return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
                "tokens_per_second": done.tokens_per_second,
                "finish_reason": done.finish_reason, "n_ctx": done.n_ctx,
                "used_chat_template": done.used_chat_template,
                "model": Path(self.request.path).name,
                **({"image_tokens": done.image_tokens} if done.image_tokens else {})}

    def _finish(self, done: Done) -> None:
        self.done = done
        if done.finish_reason == "cancelled" and not self.text:
            self.store.delete_messages_from(self.cid, self.mid)  # nothing was said: no husk
        else:
            self.store.update_message(self.mid, self.text, complete=True, stats=self.stats(done))

    def _fail(self, exc: BaseException) -> None:
        if self.done is not None:
            return
        if self.text:
            # An error keeps its one line; an interruption (Ctrl-C, a closed generator) does not.
            stats = ({"error": " ".join(str(exc).split()) or type(exc).__name__}
                     if isinstance(exc, Exception) else None)
            self.store.update_message(self.mid, self.text, complete=False, stats=stats)
        else:
            self.store.delete_messages_from(self.cid, self.mid)

    def save_partial(self) -> None:
        """App exit mid-reply: keep what has arrived, marked incomplete."""
        if self.done is None:
            self.store.update_message(self.mid, self.text, complete=False)
