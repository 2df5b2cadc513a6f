"""Help › Keyboard shortcuts and Help › About (versions of ours, the Qt binding, llama-cpp-python
and the llama.cpp build). The llama.cpp facts come from core.versions in a worker: it asks a
child process, so nothing here imports llama_cpp."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QTableWidget, QTableWidgetItem,
                               QVBoxLayout)

from .bridge import call_later


class ShortcutsDialog(QDialog):
    def __init__(self, shortcuts, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(len(shortcuts), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (keys, what) in enumerate(shortcuts):
            self.table.setItem(row, 0, QTableWidgetItem(keys))
            self.table.setItem(row, 1, QTableWidgetItem(what))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(460, 360)


class AboutDialog(QDialog):
    def __init__(self, parent=None, probe_llama: bool = True):
        super().__init__(parent)
        self.setWindowTitle("About Quantdesk")
        self.versions: dict | None = None
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(560, 320)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._show({})
        from quantdesk.core.versions import versions
        # Our own versions at once; llama.cpp's build line follows when its child answers.
        self._show(versions(probe_llama=False))
        call_later(self.pool, self, lambda: versions(probe_llama=probe_llama), self._show,
                   lambda why: self._show({**(self.versions or {}), "llama.cpp build": why}))

    def _show(self, versions: dict) -> None:
        self.versions = dict(versions)
        rows = "".join(f"<tr><td style='padding-right:12px'><b>{html.escape(k)}</b></td>"
                       f"<td>{html.escape(str(v))}</td></tr>" for k, v in versions.items())
        pending = "" if "llama.cpp build" in versions else "<p><i>Asking llama.cpp for its build…</i></p>"
        self.text.setText("<h3>Quantdesk</h3><p>Run quantized LLMs locally: find, fit, quantize, "
                          f"chat.</p><table>{rows}</table>{pending}")

    def done(self, result: int) -> None:  # noqa: D401 - Qt override
        self.pool.waitForDone(100)
        super().done(result)
