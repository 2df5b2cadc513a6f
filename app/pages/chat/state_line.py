"""The chat page's state line: one place decides what it says, from what the page is doing now.

Only one thing is said at a time, the most pressing first: stopping, a reply being generated, a
model loading, an error of THIS conversation, a one-off notice of this conversation (loaded,
unloaded, model switched, stopped), then, when nothing happens, the last reply of THIS
conversation (never another one's) or what its model is doing. The page changes the fields on
every transition and calls describe(); nothing else writes the line, so nothing stale survives.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ChatState:
    cid: int | None = None                       # the conversation shown
    loading: tuple[str, float] | None = None     # (model file name, since when)
    live_cid: int | None = None                  # the conversation a reply streams into
    live_title: str = ""
    pieces: int = 0
    first_token: float | None = None
    stopping: bool = False
    error: tuple[int | None, str] | None = None  # (conversation, one line)
    notice: tuple[int | None, str] | None = None
    last_stats: dict | None = None               # stats of this conversation's last reply
    loaded: str = ""                             # this conversation's model, when it is loaded
    idle: str = "No model loaded."               # what its model does otherwise

    def error_here(self) -> str | None:
        """The error to show with this conversation (None: none, or another chat's)."""
        if self.error is None or self.error[0] not in (None, self.cid):
            return None
        return self.error[1]

    def clear_messages(self) -> None:
        """A new action starts (load, send, another conversation): old errors and notices go."""
        self.error = self.notice = None


def describe(state: ChatState, now: float) -> str:
    if state.stopping:
        return "Stopping…"
    if state.live_cid is not None:
        where = f" (in “{state.live_title}”)" if state.live_cid != state.cid else ""
        return generating_status(state.pieces, state.first_token, now) + where
    if state.loading is not None:
        name, since = state.loading
        return f"Loading {name}… {now - since:.0f} s"
    error = state.error_here()
    if error is not None:
        return f"Error: {error}"
    if state.notice is not None and state.notice[0] in (None, state.cid):
        return state.notice[1]
    if state.last_stats and "tokens_per_second" in state.last_stats:
        return "Last reply: " + reply_status(state.last_stats)
    return state.loaded or state.idle


def reply_status(stats: dict) -> str:
    """A reply's stats as the store keeps them (core.runtime.chat.Reply.stats)."""
    used = stats.get("prompt_tokens", 0) + stats.get("completion_tokens", 0)
    ended = {"stop": "", "length": " · stopped at max tokens",
             "cancelled": " · stopped"}.get(stats.get("finish_reason"), "")
    template = ("" if stats.get("used_chat_template", True)
                else " · no chat template: plain completion")
    return (f"{stats['tokens_per_second']:.1f} tokens/s · context used {used} / "
            f"{stats.get('n_ctx', '?')}{ended}{template}")


def loaded_status(result, plan_note: str) -> str:
    plan = f" ({plan_note})" if plan_note else ""
    return (f"Loaded {Path(result.path).name} in {result.load_seconds:.1f} s · "
            f"context {result.n_ctx} · GPU layers {result.n_gpu_layers}{plan}")


def generating_status(pieces: int, first_token: float | None, now: float) -> str:
    if first_token is None:
        return "Reading the prompt…"
    rate = (pieces - 1) / max(now - first_token, 1e-3) if pieces > 1 else 0.0
    return f"Generating… {pieces} tokens · {rate:.1f} tokens/s"
