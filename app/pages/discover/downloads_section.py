"""The Discover page's downloads: start the selected variant's files, pause, resume, cancel
(asking first when a big partial file would be deleted), and the access token for gated repos.

A mixin of discover_page.DiscoverPage, which builds the widgets used here (downloads,
downloads_view, token_row, token_edit, variants, variants_view, message) and relays the
DownloadManager's updates to the GUI thread (DiscoverPage._task_updated).
"""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from quantdesk.app import formatting
from quantdesk.app.bridge import call_later

# Cancelling throws the partial file away: ask first when that is this much (or the file is).
CONFIRM_CANCEL_BYTES = 500_000_000


class DownloadsSection:
    """The downloads table's actions."""

    def download_selected(self) -> None:
        row = self.variants_view.currentIndex().row()
        variant = self.variants.item(row if row >= 0 else 0)
        if self.details is None or variant is None:
            return
        for f in variant.files:
            self.manager.add(self.details.repo_id, f.name, sha256=f.sha256, size=f.size)

    def _selected_task(self):
        return self.downloads.item(self.downloads_view.currentIndex().row())

    def _on_task(self, action) -> None:
        task = self._selected_task()
        if task is not None:
            action(task.id)

    def cancel_selected(self) -> None:
        """Cancel deletes the partial file: for a big download, ask first (Pause keeps it)."""
        task = self._selected_task()
        if task is None or task.state in ("done", "cancelled"):
            return
        at_stake = max(task.total_bytes or 0, task.done_bytes or 0)
        if at_stake >= CONFIRM_CANCEL_BYTES and not self.ask_confirmation(
                f"Cancel the download of {task.filename} ({formatting.size(at_stake)})?\n\n"
                f"The {formatting.size(task.done_bytes)} downloaded so far will be deleted. "
                "Pause keeps them for later."):
            return
        self.manager.cancel(task.id)

    def ask_confirmation(self, text: str) -> bool:
        """A yes/no question (tests replace this)."""
        answer = QMessageBox.question(self, "Quantdesk", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def save_token(self) -> None:
        from quantdesk.core.hub.connection import save_token
        token = self.token_edit.text().strip()
        if not token:
            return

        def saved(_user):
            self.token_edit.clear()
            self.token_row.hide()
            self.message.hide()
            for t in self.manager.tasks():
                if t.state == "failed" and t.needs_token:
                    self.manager.resume(t.id)
        call_later(self.pool, self, lambda: save_token(token), saved, self._error)
