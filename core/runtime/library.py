"""The library session: what every door (window, CLI, coming HTTP server) does with the local
models — list them, open files, forget them, take in a model Quantdesk wrote, and say which of
them fit this machine. Plain Python; call it off the GUI thread (the first listing may scan the
Hugging Face cache and inspect every file)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from quantdesk.core.gguf import GGUFError, ModelInfo
from quantdesk.core.library import Library, LibraryEntry

# Context length the fit verdicts assume: the chat page's default, so a verdict says what
# loading the model will do.
BADGE_CTX = 2048


@dataclass(frozen=True)
class Listing:
    entries: list[LibraryEntry]
    warning: str | None = None   # why library.json was set aside; given once, then None


@dataclass(frozen=True)
class Opened:
    """What opening one path did: `info` when the model was validated and added, else `error`."""
    path: str                    # as the user gave it (any part of a split model)
    info: ModelInfo | None
    error: str | None


class LibrarySession:
    """One Library shared by a door's calls. Library is thread-safe; the session builds it on
    first use so that constructing the session (on a GUI thread) costs nothing."""

    def __init__(self, data_dir: Path | None = None):
        self._data_dir = data_dir
        self._library: Library | None = None
        self._lock = threading.Lock()

    @property
    def library(self) -> Library:
        with self._lock:
            if self._library is None:
                self._library = Library(self._data_dir)
            return self._library

    def listing(self) -> Listing:
        """Every entry, and once, why the user's added models are gone (library.json unreadable)."""
        lib = self.library
        entries = lib.entries()
        warning, lib.warning = lib.warning, None
        return Listing(entries, warning)

    def open_paths(self, paths) -> list[Opened]:
        """Validate and add each file; a bad one is reported and changes nothing. The parts of a
        split model opened together give one result, for the first part given."""
        results, seen = [], set()
        for path in map(str, paths):
            try:
                entry = self.library.add(path)
            except GGUFError as exc:      # its message names the file
                results.append(Opened(path, None, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. library.json not writable: say so, go on
                results.append(Opened(path, None, f"{Path(path).name}: {exc}"))
                continue
            if str(entry.path) not in seen:
                seen.add(str(entry.path))
                results.append(Opened(path, entry.info, None))
        return results

    def add_written(self, path) -> None:
        """A model Quantdesk just wrote. Files in models_dir() are found by the library's own
        scan; one written elsewhere is added (remembered) so that it is listed too."""
        from quantdesk.core.paths import models_dir
        written = Path(str(path)).resolve()
        if models_dir().resolve() not in written.parents:
            self.library.add(written)

    def remove(self, path) -> None:
        """Forget a model (any part of a split one); the file stays on disk."""
        self.library.remove(path)

    def fit_verdicts(self, entries, overrides: dict | None = None,
                     n_ctx: int = BADGE_CTX) -> dict:
        """{path string: Plan, or a one-line reason} for every readable entry, planned for this
        machine with the user's own figures (`overrides`: {"vram": bytes, "ram": bytes}).
        The first hardware probe may start a short child process."""
        from quantdesk.core.hardware import detect
        from quantdesk.core.planner import plan_for_model
        hw = detect().with_overrides(**(overrides or {}))
        out = {}
        for entry in entries:
            if entry.info is None:
                continue
            try:
                out[str(entry.path)] = plan_for_model(entry.info, n_ctx=n_ctx, hardware=hw,
                                                      lower_ctx=False)
            except Exception as exc:  # noqa: BLE001 - one odd file must not hide the others
                out[str(entry.path)] = str(exc).strip().split("\n")[0] or type(exc).__name__
        return out
