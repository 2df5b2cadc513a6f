"""ModelHost: one engine host process (core.engine.EngineClient) with one model loaded.

Its users take turns: EngineClient serves one caller at a time, so generate and embed wait for
the host's turn; cancel works from any thread, while waiting for the turn too.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from quantdesk.core.engine.types import Done, EngineError, LoadResult, SamplingParams, Token

from .model_plan import ResolvedLoad


def cancelled_done(n_ctx: int) -> Done:
    """The summary of a reply cancelled before it started."""
    return Done(prompt_tokens=0, completion_tokens=0, tokens_per_second=0.0,
                finish_reason="cancelled", used_chat_template=False, n_ctx=n_ctx)


@dataclass(eq=False)
class ModelHost:
    """One engine host process with one model loaded. Its users take turns."""
    client: object             # EngineClient
    resolved: ResolvedLoad
    result: LoadResult
    last_used: float = field(default_factory=time.monotonic)
    _turn: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def path(self) -> str:
        return self.resolved.request.path

    @property
    def pid(self) -> int | None:
        return self.client.host_pid

    @property
    def alive(self) -> bool:
        return self.client.loaded is not None

    @property
    def busy(self) -> bool:
        return self._turn.locked()

    def cancel(self) -> None:
        """Stop the reply in progress (any thread)."""
        self.client.cancel()

    def _wait_turn(self, cancel) -> bool:
        while not self._turn.acquire(timeout=0.1):
            if cancel is not None and cancel.cancelled:
                return False
        return True

    def generate(self, messages: list[dict], params: SamplingParams | None = None,
                 cancel=None, prompt: str | None = None,
                 tools: list[dict] | None = None) -> Iterator[Token | Done]:
        """Tokens, then one Done. `cancel` (a CancelToken, any thread) ends it with
        finish_reason "cancelled". Raises EngineError when the host dies. `prompt`: a raw text
        to continue instead of the chat-templated `messages` (the server's /v1/completions)."""
        if not self._wait_turn(cancel):
            yield cancelled_done(self.result.n_ctx)
            return
        try:
            if cancel is not None and cancel.cancelled:
                yield cancelled_done(self.result.n_ctx)
                return
            # The client looks at `cancel` while it waits too: a long prompt stops mid-way.
            yield from self.client.generate(messages, params, cancel, prompt=prompt,
                                            tools=tools)
        finally:
            self.last_used = time.monotonic()
            self._turn.release()

    def embed(self, texts: list[str], cancel=None) -> tuple[list[list[float]], int]:
        """(vectors, prompt tokens): needs a host loaded with LoadRequest(embedding=True)."""
        if not self._wait_turn(cancel):
            raise EngineError("cancelled")
        try:
            return self.client.embed(texts)
        finally:
            self.last_used = time.monotonic()
            self._turn.release()

    def close(self, wait: bool = True) -> None:
        """End the host process. wait: let a reply in progress finish first."""
        if wait:
            with self._turn:
                self.client.shutdown()
        else:
            self.client.cancel()
            self.client.shutdown()
