"""The Server page: start/stop the local API server, its port, LAN access and key, the base URL
to copy, the loaded models (with Unload) and a live request log.

The server (core.server.ServerThread) runs over the window's own ModelManager and library, so a
model the chat has loaded with the same settings serves API requests too, and the other way
round. Loads go through the manager's least-recently-used rule (one model at a time by default).
No idle unload here: the window keeps a model until Unload, as the chat page does.

Other machines: the server's loads may put layers on the machines enabled in Settings > Machines
(core.settings, the list the chat page's loads read), taken when the server starts and shown
in the Machines row. Start asks each for its free memory (core.runtime.workers.ask_workers, in
the pool thread: a machine that went away answers after the probe's timeout); one that does
not answer is named in the status line, and loads go on without it, as the chat's do.
"""
from __future__ import annotations

import secrets

from PySide6.QtCore import QThreadPool, QTimer, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QSpinBox, QTableView, QVBoxLayout,
                               QWidget)

from quantdesk.app.bridge import Relay, call_later
from quantdesk.app.rows_model import RowsModel

LOG_LINES = 2000


def enabled_machines() -> tuple[str, ...]:
    """Settings > Machines' enabled workers ("host:port"), read now."""
    from quantdesk.core.settings import load_settings
    return load_settings().enabled_machines()


def machines_text(infos, notes) -> str:
    """One line: each machine that answered with its free memory, then those left out."""
    from quantdesk.app import formatting
    return "; ".join([f"{i.endpoint} ({formatting.size(i.free_bytes)} free)" for i in infos]
                     + list(notes))


class LoadedModels(RowsModel):
    """The manager's loaded hosts (core.runtime.ModelHost), least recently used first."""
    COLUMNS = ("Model", "Context", "GPU layers", "Machines", "State")

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        host = self.item(index.row())
        if host is None or role != Qt.ItemDataRole.DisplayRole:
            return None
        # the workers this load registered (LoadResult.rpc_servers), else this machine alone
        machines = ", ".join(host.result.rpc_servers) or "this machine"
        return (host.path.rsplit("/", 1)[-1], str(host.resolved.n_ctx),
                str(host.result.n_gpu_layers), machines, "generating" if host.busy else "idle"
                )[index.column()]


class ServerPage(QWidget):
    def __init__(self, library_session, models, parent=None):
        """library_session: core.runtime.LibrarySession; models: the window's ModelManager."""
        super().__init__(parent)
        self._library, self._models = library_session, models
        self._server = None            # core.server.ServerThread while running
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._log_relay = Relay(self)
        self._log_relay.delivered.connect(self._logged)
        self._events = Relay(self)
        self._events.delivered.connect(lambda _e: self.refresh_loaded())
        self._unsubscribe = models.subscribe(self._events)

        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(8765)
        self.lan = QCheckBox("Allow other machines on the network (needs the API key)")
        self.key = QLineEdit()
        self.key.setPlaceholderText("none (this machine only)")
        self.start_button = QPushButton("Start")
        self.url = QLineEdit()
        self.url.setReadOnly(True)
        self.copy_button = QPushButton("Copy")
        self.status = QLabel("Stopped")
        self.machines = QLabel()       # Settings > Machines' enabled ones; when serving, checked
        self.machines.setWordWrap(True)
        self.loaded = LoadedModels(self)
        self.loaded_view = QTableView()
        self.loaded_view.setModel(self.loaded)
        self.loaded_view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.unload_button = QPushButton("Unload")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)

        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("", self.lan)
        form.addRow("API key", self.key)
        url_row = QHBoxLayout()
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy_button)
        form.addRow("Base URL", url_row)
        form.addRow("Machines", self.machines)
        top = QHBoxLayout()
        top.addWidget(self.start_button)
        top.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addWidget(QLabel("Loaded models"))
        layout.addWidget(self.loaded_view, 1)
        layout.addWidget(self.unload_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(QLabel("Requests"))
        layout.addWidget(self.log, 2)

        self.start_button.clicked.connect(self.toggle)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.url.text()))
        self.lan.toggled.connect(self._lan_toggled)
        self.unload_button.clicked.connect(self.unload_selected)
        self._timer = QTimer(self)           # "generating"/"idle" has no event of its own
        self._timer.timeout.connect(self.refresh_loaded)
        self._timer.start(1000)
        self._show_config()

    # ---- settings -------------------------------------------------------------------------------
    def config(self):
        from quantdesk.core.runtime.models import DEFAULT_CTX
        from quantdesk.core.server import ServerConfig
        # The chat's default context: the same model loaded by both is one host, not two.
        # The machines the chat's loads use (Settings > Machines), as the server starts.
        return ServerConfig(host="0.0.0.0" if self.lan.isChecked() else "127.0.0.1",
                            port=self.port.value(), api_key=self.key.text().strip() or None,
                            ttl=None, n_ctx=DEFAULT_CTX, rpc_servers=enabled_machines())

    def _lan_toggled(self, on: bool) -> None:
        if on and not self.key.text().strip():
            self.key.setText(secrets.token_urlsafe(24))   # LAN access never goes without a key
        self._show_config()

    def _show_config(self) -> None:
        config = self.config()
        self.url.setText(config.base_url)
        if not self.running:
            self.machines.setText(
                ", ".join(config.rpc_servers) + " (Settings > Machines; asked at Start)"
                if config.rpc_servers else "none: this machine only (Settings > Machines adds "
                                           "other computers)")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._show_config()   # the machines may have changed on the Settings page

    # ---- start / stop ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._server is not None

    def toggle(self) -> None:
        self.stop() if self.running else self.start()

    def start(self) -> None:
        from quantdesk.core.server import ServerThread
        try:
            config = self.config().check()
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        self._show_config()
        self.start_button.setEnabled(False)
        self.status.setText("Starting…")
        server = ServerThread(config, manager=self._models, library=self._library,
                              listeners=[self._log_relay])

        def begin():   # pool thread: each probe ends within its timeout
            from quantdesk.core.runtime.workers import ask_workers
            answered = ask_workers(config.rpc_servers)
            server.start()
            return answered

        def started(answered) -> None:
            infos, notes = answered
            self._server = server
            self.start_button.setEnabled(True)
            self.start_button.setText("Stop")
            if config.rpc_servers:
                self.machines.setText(machines_text(infos, notes))
            # a machine that does not answer: named, in one line; loads go on without it
            self.status.setText(f"Serving at {config.base_url}" + (
                f"; {len(notes)} of {len(config.rpc_servers)} machine(s) left out: "
                + "; ".join(n.removeprefix("left out: ") for n in notes) if notes else ""))
            self._set_editable(False)

        def failed(message: str) -> None:
            self.start_button.setEnabled(True)
            self.status.setText(f"Could not start: {message}")
        call_later(self._pool, self, begin, started, failed)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self.start_button.setText("Start")
        self.status.setText("Stopped")
        self._set_editable(True)
        self._show_config()

    def _set_editable(self, on: bool) -> None:
        for w in (self.port, self.lan, self.key):
            w.setEnabled(on)

    # ---- models and log -------------------------------------------------------------------------
    def refresh_loaded(self) -> None:
        self.loaded.set_rows(self._models.loaded())

    def unload_selected(self) -> None:
        rows = {i.row() for i in self.loaded_view.selectionModel().selectedRows()}
        for host in [self.loaded.item(r) for r in sorted(rows)]:
            if host is not None:
                call_later(self._pool, self, lambda p=host.path: self._models.unload(p),
                           lambda _n: self.refresh_loaded(), self.status.setText)

    def _logged(self, record) -> None:
        self.log.appendPlainText(record.line())

    def shutdown(self) -> None:
        """Window closing: the server stops (the window ends the model hosts)."""
        self._timer.stop()
        self._unsubscribe()
        self.stop()
