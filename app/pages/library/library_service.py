"""The library session seen from the GUI: its calls run off the GUI thread (one at a time, on a
one-thread pool) and their outcomes arrive as signals. The rules themselves live in
quantdesk.core.runtime.library.LibrarySession; this adapter only runs it and fills the model.

Opening a file (any door: menu, drag-and-drop, command line) validates it and adds it to the
library; on failure nothing is added and the one-line reason is reported.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from quantdesk.app.bridge import call_later, serial_pool
from quantdesk.core.runtime.library import LibrarySession

from .library_model import LibraryTableModel


class LibraryService(QObject):
    refreshed = Signal()
    opened = Signal(object)            # ModelInfo of a file that was validated and added
    open_failed = Signal(str, str)     # path, one-line reason
    failed = Signal(str)               # refresh/remove problems
    fits_ready = Signal()              # the model's Fit column has the planner's verdicts

    def __init__(self, parent: QObject | None = None, session: LibrarySession | None = None):
        super().__init__(parent)
        self.session = session or LibrarySession()
        self.model = LibraryTableModel(self)
        self._pool = serial_pool(self)
        # Verdicts are planned on their own thread: a first hardware probe may take a moment and
        # must not hold up opening or listing models.
        self._fit_pool = serial_pool(self)
        self._fit_generation = 0
        self.fit_overrides: dict = {}  # {"vram": bytes, "ram": bytes}: the user's own figures

    def refresh(self) -> None:
        call_later(self._pool, self, self.session.listing, self._show,
                   lambda why: self.failed.emit(f"Could not read the library: {why}"))

    def _show(self, listing) -> None:
        if listing.warning:  # the user's added models are gone from the list: say why, once
            self.failed.emit(listing.warning)
        self.model.set_entries(listing.entries)
        self.refreshed.emit()
        self.refresh_fits()

    def refresh_fits(self) -> None:
        """Plan every entry in the background; a newer request supersedes an older one."""
        self._fit_generation += 1
        generation, entries = self._fit_generation, self.model.entries()
        overrides = dict(self.fit_overrides)

        def done(fits):
            if generation == self._fit_generation:
                self.model.set_fits(fits)
                self.fits_ready.emit()
        call_later(self._fit_pool, self,
                   lambda: self.session.fit_verdicts(entries, overrides), done,
                   lambda why: self.failed.emit(f"Could not plan the library's models: {why}"))

    def open_paths(self, paths) -> None:
        paths = [str(p) for p in paths]
        if paths:
            call_later(self._pool, self,
                       lambda: (self.session.open_paths(paths), self.session.listing()),
                       self._opened_all, self.failed.emit)

    def _opened_all(self, outcome) -> None:
        results, listing = outcome
        self._show(listing)
        for result in results:
            if result.info is not None:
                self.opened.emit(result.info)
            else:
                self.open_failed.emit(result.path, result.error)

    def add_quietly(self, path, on_done=None) -> None:
        """A model Quantdesk just wrote: listed without switching pages."""
        self._change(lambda: self.session.add_written(path),
                     f"Could not add {Path(str(path)).name}", on_done)

    def remove(self, path, *, delete: bool = False, confirmed: bool = False) -> None:
        """Forget a model; with `delete`, also delete its file(s) by the session's rule
        (core.runtime.library.plan_deletion: `confirmed` is the user's explicit yes)."""
        if delete:
            change = lambda: self.session.remove_and_delete(path, confirmed=confirmed)  # noqa: E731
        else:
            change = lambda: self.session.remove(path)  # noqa: E731
        self._change(change, f"Could not remove {Path(str(path)).name}")

    def _change(self, change, what: str, on_done=None) -> None:
        """On the library thread: `change()`, then the new listing, which the model shows."""
        def job():
            change()
            return self.session.listing()

        def done(listing):
            self._show(listing)
            if on_done is not None:
                on_done()
        call_later(self._pool, self, job, done, lambda why: self.failed.emit(f"{what}: {why}"))

    def wait_idle(self, ms: int = 5000) -> bool:
        return self._pool.waitForDone(ms) and self._fit_pool.waitForDone(ms)
