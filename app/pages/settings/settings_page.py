"""Settings page: where models go, the Hugging Face token, what a new chat loads with, the theme.

Every change is saved at once through core.settings (one JSON file, written atomically); there is
no Save button to forget. The token is handed to huggingface_hub's own storage (core.hub.
connection.save_token checks it against the hub first) and never shown again: the page only says
whether one is stored and for which user. Machines (workers on other computers) have their own
box, machines.py.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from quantdesk.app.bridge import call_later
from quantdesk.app.desktop import open_folder
from quantdesk.app.formatting import one_line
from quantdesk.app.pages.chat.chat_settings import GpuLayersBox
from quantdesk.core import paths
from quantdesk.core.runtime.models import DEFAULT_CTX
from quantdesk.core.settings import load_settings, update_settings

THEME_LABELS = (("Same as the system", "system"), ("Light", "light"), ("Dark", "dark"))


def token_state() -> str:
    """One line: is a token stored, where from, for whom (never the token itself)."""
    import os
    from quantdesk.core.hub.connection import get_token
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "A token is set by the HF_TOKEN environment variable (it wins over a saved one)."
    return "A token is saved." if get_token() else "No token saved: public repos only."


class SettingsPage(QWidget):
    theme_changed = Signal(str)        # "system" | "light" | "dark", applied live by the window
    saved = Signal()                   # any setting was written

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        s = load_settings()
        title = QLabel("Settings")
        title.setObjectName("pageTitle")

        # ---- folders
        self.data_label = QLabel(str(paths.data_dir()))
        self.data_open = QPushButton("Open folder")
        self.models_edit = QLineEdit(s.models_dir or "")
        self.models_edit.setPlaceholderText(str(paths.default_models_dir()))
        self.models_browse = QPushButton("Choose…")
        self.models_open = QPushButton("Open folder")
        folders = QGroupBox("Folders")
        ff = QFormLayout(folders)
        ff.addRow("Data (chats, library list)", _row(self.data_label, self.data_open))
        ff.addRow("Models Quantdesk makes", _row(self.models_edit, self.models_browse, self.models_open))

        # ---- token
        self.token_state = QLabel("…")
        self.token_state.setWordWrap(True)
        self.token_edit = QLineEdit(placeholderText="hf_… (for gated or private repos)")
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_save = QPushButton("Check and save")
        self.token_message = QLabel()
        self.token_message.setWordWrap(True)
        hub = QGroupBox("Hugging Face")
        hf = QFormLayout(hub)
        hf.addRow(self.token_state)
        hf.addRow("Access token", _row(self.token_edit, self.token_save))
        hf.addRow(self.token_message)

        # ---- new chats
        self.threads = QSpinBox()
        self.threads.setRange(0, 1024)
        self.threads.setSpecialValueText("automatic (physical cores)")
        self.threads.setValue(s.n_threads or 0)
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(0, 1 << 20)
        self.n_ctx.setSingleStep(1024)
        self.n_ctx.setSpecialValueText(f"default ({DEFAULT_CTX})")
        self.n_ctx.setValue(s.n_ctx or 0)
        self.gpu_layers = GpuLayersBox()
        self.gpu_layers.set_layers(s.n_gpu_layers if s.n_gpu_layers is not None else "auto")
        chats = QGroupBox("New chats start with")
        cf = QFormLayout(chats)
        cf.addRow("CPU threads", self.threads)
        cf.addRow("Context length", self.n_ctx)
        cf.addRow("GPU layers", self.gpu_layers)
        note = QLabel("Set here, these replace the chat panel's values in every new chat; a chat "
                      "keeps its own settings once made (change them in its side panel).")
        note.setWordWrap(True)
        note.setObjectName("placeholderText")
        cf.addRow(note)

        # ---- appearance
        self.theme_box = QComboBox()
        for label, value in THEME_LABELS:
            self.theme_box.addItem(label, value)
        self.theme_box.setCurrentIndex(self.theme_box.findData(s.theme))
        look = QGroupBox("Appearance")
        QFormLayout(look).addRow("Theme", self.theme_box)

        # ---- other machines (workers, core/rpc)
        from .machines import MachinesBox
        self.machines = MachinesBox()
        self.machines.changed.connect(self.saved.emit)

        self.message = QLabel()
        self.message.setWordWrap(True)
        body = QWidget()
        bv = QVBoxLayout(body)
        bv.addWidget(title)
        for w in (folders, hub, chats, self.machines, look, self.message):
            bv.addWidget(w)
        bv.addStretch(1)
        body.setMaximumWidth(860)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

        self.data_open.clicked.connect(lambda: open_folder(paths.data_dir()))
        self.models_open.clicked.connect(lambda: open_folder(paths.models_dir()))
        self.models_browse.clicked.connect(self._choose_models_dir)
        self.models_edit.editingFinished.connect(lambda: self.set_models_dir(self.models_edit.text()))
        self.token_save.clicked.connect(self.save_token)
        self.token_edit.returnPressed.connect(self.save_token)
        self.threads.valueChanged.connect(lambda v: self._save(n_threads=v or None))
        self.n_ctx.valueChanged.connect(lambda v: self._save(n_ctx=v or None))
        self.gpu_layers.valueChanged.connect(lambda _v: self._save(n_gpu_layers=self.gpu_layers.layers()))
        self.theme_box.currentIndexChanged.connect(lambda _i: self.set_theme(self.theme_box.currentData()))
        self.refresh_token_state()

    # ---- saving ----------------------------------------------------------------------------
    def _save(self, **changes) -> None:
        try:
            update_settings(**changes)
        except OSError as exc:
            self.message.setText(f"Could not save the settings: {one_line(exc)}")
            return
        self.message.setText("Saved.")
        self.saved.emit()

    def set_theme(self, theme: str) -> None:
        if self.theme_box.currentData() != theme:
            self.theme_box.setCurrentIndex(self.theme_box.findData(theme))  # comes back here
            return
        self._save(theme=theme)
        self.theme_changed.emit(theme)

    def set_models_dir(self, text: str) -> None:
        text = text.strip()
        if text:
            folder = Path(text).expanduser()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.message.setText(f"Cannot use {folder} for models: {one_line(exc)}")
                return
        self.models_edit.setText(text)
        self._save(models_dir=text or None)

    def _choose_models_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the models Quantdesk makes",
                                                  str(paths.models_dir()))
        if folder:
            self.set_models_dir(folder)

    # ---- token -----------------------------------------------------------------------------
    def refresh_token_state(self) -> None:
        call_later(self.pool, self, token_state, self.token_state.setText,
                   lambda why: self.token_state.setText(f"Cannot read the token store: {why}"))

    def save_token(self) -> None:
        from quantdesk.core.hub.connection import save_token
        token = self.token_edit.text().strip()
        if not token:
            return
        self.token_save.setEnabled(False)
        self.token_message.setText("Checking the token with the hub…")

        def saved(user):
            self.token_edit.clear()
            self.token_save.setEnabled(True)
            self.token_message.setText(f"Saved: the hub knows this token as {user}.")
            self.refresh_token_state()

        def failed(why):
            self.token_save.setEnabled(True)
            self.token_message.setText(f"Not saved: {why}")
        call_later(self.pool, self, lambda: save_token(token), saved, failed)

    def shutdown(self) -> None:
        self.pool.waitForDone(5000)
        self.machines.shutdown()


def _row(*widgets) -> QWidget:
    w = QWidget()
    h = QHBoxLayout(w)
    h.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        h.addWidget(widget, 1 if i == 0 else 0)
    return w
