"""What can go wrong reading a GGUF, as three exceptions.

`HeaderIncomplete` is not a failure: the bytes given end inside the header; fetch more and retry.
`HeaderError` says why some bytes are not a GGUF header we accept; its `reason` completes a
sentence whose subject is the file ("is corrupt: ...", "is truncated: ..."), so any caller can
put the file's name in front. `GGUFError` is that finished sentence for the user: one line that
starts with the file name.
"""
from __future__ import annotations

from quantdesk.core.text import shown


class GGUFError(Exception):
    """A file that cannot be used as a model; str() is one line for the user, naming the file."""


class HeaderError(Exception):
    """Bytes that are not a GGUF header we accept (bad magic, unknown type, absurd counts, ...)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def naming(self, name: str) -> str:
        """The one-line message for the user: 'model.gguf is corrupt: ...' (the name escaped: a
        file or a server named it)."""
        return f"{shown(name)} {self.reason}"


class HeaderIncomplete(Exception):
    """The bytes end inside the header: `have` bytes were given, at least `need` are needed
    (`where` says which part of the header was being read)."""

    def __init__(self, have: int, need: int, where: str = "the header"):
        super().__init__(f"GGUF header continues past the first {have} bytes (inside {where}; "
                         f"at least {need - have} more needed)")
        self.have, self.need, self.where = have, need, where

    @property
    def more(self) -> int:
        """Bytes to fetch beyond `have`, at the least."""
        return self.need - self.have
