"""What the chat page shows: the transcript as HTML (the state line is state_line.py's).

Rendering only; the rules of a reply (saving, stats, titles) are core.runtime.chat's.
"""
from __future__ import annotations

from quantdesk.app.markdown_view import error_html, message_html
from quantdesk.core.engine.reasoning import split_reasoning

RENDER_EVERY_MS = 80   # a fast model must not flood the GUI thread with re-renders
EMPTY = ('<p style="color:#7a8494">Pick a model above, type a message below, press Enter.</p>')


def close_open_fence(text: str) -> str:
    """A reply cut mid code block renders as a code block, not as run-on text."""
    fences = sum(1 for line in text.splitlines() if line.lstrip().startswith("```"))
    return text + "\n```" if fences % 2 else text


def image_lines(message) -> str:
    """A message's images as "[image: name]" lines under its text (names escaped for Markdown:
    a file name is never markup)."""
    names = [ref.name for ref in getattr(message, "images", ())]
    return "".join(f"\n\n*\\[image: {_escape(n)}\\]*" for n in names)


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|" else c for c in text)


def assistant_html(text: str, note: str, dark: bool, reasoning=None) -> str:
    """A reply; `reasoning`: (ReasoningFormat, opened in the prompt) of the model's template,
    whose thoughts are split off by the parser the API server uses (core.engine.reasoning)."""
    thought, answer = split_reasoning(text, *reasoning) if reasoning else (None, text)
    return message_html("assistant", close_open_fence(answer), note, dark, thought or "")


def transcript_html(messages, live_mid: int | None, live_text: str, error: str | None,
                    dark: bool = False, reasoning=None) -> str:
    """The conversation; the reply being generated (`live_mid`) shows `live_text`. `dark`: the
    dark theme's colours (markdown_view.COLOURS); `reasoning`: see assistant_html."""
    parts = []
    for m in messages:
        if m.id == live_mid:
            parts.append(assistant_html(live_text, "generating…", dark, reasoning))
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
        if m.role == "assistant":
            parts.append(assistant_html(m.content, note, dark, reasoning))
        else:
            parts.append(message_html(m.role, close_open_fence(m.content) + image_lines(m), note,
                                      dark))
    if error:
        parts.append(error_html(error, dark))
    return "".join(parts) or EMPTY
