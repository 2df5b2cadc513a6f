"""The Library seen from the GUI: one Library object used from one worker thread at a time.

Opening a file (any door: menu, drag-and-drop, command line) validates it with inspect_gguf and
adds it to the library off the GUI thread; on failure nothing is added and the one-line reason
is reported.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from .jobs import serial_pool, start_job
from .library_model import LibraryTableModel


class LibraryService(QObject):
    refreshed = Signal()
    opened = Signal(object)            # ModelInfo of a file that was validated and added
    open_failed = Signal(str, str)     # path, one-line reason
    failed = Signal(str)               # refresh/remove problems
    fits_ready = Signal()              # the model's Fit column has the planner's verdicts

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.model = LibraryTableModel(self)
        self._pool = serial_pool(self)
        self._library = None
        # Badges are planned on their own thread: a first hardware probe may take a moment and
        # must not hold up opening or listing models.
        self._fit_pool = serial_pool(self)
        self._fit_generation = 0
        self.fit_overrides: dict = {}  # {"vram": bytes, "ram": bytes}: the user's own figures

    def _lib(self):
        if self._library is None:  # built in the worker: it may scan the HF cache
            from quantdesk.core.library import Library
            self._library = Library()
        return self._library

    def refresh(self) -> None:
        start_job(self._pool, self, self._entries_and_warning, self._set_entries,
                  lambda exc: self.failed.emit(f"Could not read the library: {exc}"))

    def _entries_and_warning(self):
        """In the worker: the entries, and once, why library.json was set aside (if it was)."""
        lib = self._lib()
        entries, warning = lib.entries(), lib.warning
        lib.warning = None
        return entries, warning

    def _set_entries(self, result) -> None:
        entries, warning = result
        if warning:  # the user's added models are gone from the list: say why, once
            self.failed.emit(warning)
        self.model.set_entries(entries)
        self.refreshed.emit()
        self.refresh_fits()

    def refresh_fits(self) -> None:
        """Plan every entry in the background; a newer request supersedes an older one."""
        from . import fit
        self._fit_generation += 1
        generation, entries = self._fit_generation, self.model.entries()
        overrides = dict(self.fit_overrides)

        def done(fits):
            if generation == self._fit_generation:
                self.model.set_fits(fits)
                self.fits_ready.emit()
        start_job(self._fit_pool, self, lambda: fit.plan_entries(entries, overrides), done,
                  lambda exc: self.failed.emit(f"Could not plan the library's models: {exc}"))

    def open_paths(self, paths) -> None:
        paths = [str(p) for p in paths]
        if not paths:
            return
        start_job(self._pool, self, lambda: self._open_all(paths), self._opened_all,
                  lambda exc: self.failed.emit(str(exc)))

    def _open_all(self, paths: list[str]):
        from quantdesk.core.gguf import GGUFError, inspect_gguf
        results, seen = [], set()
        for path in paths:
            try:
                info = inspect_gguf(path)
                if info.path in seen:  # the other parts of a split model already opened
                    continue
                seen.add(info.path)
                self._lib().add(info.path)
                results.append((path, info, None))
            except GGUFError as exc:
                results.append((path, None, str(exc)))
            except Exception as exc:  # noqa: BLE001 - e.g. library.json not writable
                results.append((path, None, f"{Path(path).name}: {exc}"))
        return results, self._entries_and_warning()

    def _opened_all(self, outcome) -> None:
        results, entries = outcome
        self._set_entries(entries)
        for path, info, error in results:
            if info is not None:
                self.opened.emit(info)
            else:
                self.open_failed.emit(path, error)

    def add_quietly(self, path, on_done=None) -> None:
        """A model Quantdesk just wrote: listed without switching pages. Files in models_dir()
        are found by the library's own scan; others are added (persisted) first."""
        def job():
            from quantdesk.core.paths import models_dir
            p = Path(str(path)).resolve()
            if models_dir().resolve() not in p.parents:
                self._lib().add(p)
            return self._entries_and_warning()

        def done(entries):
            self._set_entries(entries)
            if on_done is not None:
                on_done()
        start_job(self._pool, self, job, done,
                  lambda exc: self.failed.emit(f"Could not add {Path(str(path)).name}: {exc}"))

    def remove(self, path) -> None:
        """Forget a model (the file stays on disk)."""
        def job():
            self._lib().remove(path)
            return self._entries_and_warning()
        start_job(self._pool, self, job, self._set_entries,
                  lambda exc: self.failed.emit(f"Could not remove {Path(str(path)).name}: {exc}"))

    def wait_idle(self, ms: int = 5000) -> bool:
        return self._pool.waitForDone(ms) and self._fit_pool.waitForDone(ms)
