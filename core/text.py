"""Text that came from a file or a server, made fit for a one-line message (standard library only).

A tensor name, a metadata key, a model name, an ETag or a repo file name is whatever the file or
the server says it is: NUL, ESC (a terminal escape sequence), CR and LF (a forged second line in a
log), bidi overrides, or 2,000 characters. Every message that shows such a value goes through
`shown()` (or `quoted()`, the same with quotes around it), so the message stays one readable line
and the terminal or log that prints it does nothing but print it.
"""
from __future__ import annotations

LIMIT = 80   # characters of a value a message shows; names longer than this are cut with "..."

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(value, limit: int = LIMIT) -> str:
    """`value` as a message may show it: every character Python does not call printable (control
    and format characters, line and paragraph separators, lone surrogates) written as an escape
    (\\n, \\x1b, \\u202e), and the result cut to `limit` characters with "...". Text that needs
    neither comes back as it is; a value that is not a string is shown as its repr()."""
    text = value if isinstance(value, str) else repr(value)
    head = text[:limit + 1]             # escaping only lengthens: never walk a huge value
    if not head.isprintable():
        head = "".join(ch if ch.isprintable() else _escape(ch) for ch in head)
    return head if len(head) <= limit else head[:max(limit - 3, 0)] + "..."


def quoted(value, limit: int = LIMIT) -> str:
    """shown(value) in single quotes: "tensor 'blk.0.x' appears twice"."""
    return f"'{shown(value, limit)}'"
