"""Settings > Machines: other computers running `quantdesk worker`, whose memory a chat may use.

The list is core.settings' `machines` (saved at once, like every setting). "Test" asks each
worker for its free memory through core.rpc.wire (timeouts, one line when it fails) in a pool
thread, never on the GUI thread: a machine that went away answers after the timeout, not by
freezing the window. Enabled machines are read at each chat load (core.runtime.chat), so a
change counts from the next load.
"""
from __future__ import annotations

from PySide6.QtCore import QThreadPool, Qt, Signal
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from quantdesk.app import formatting
from quantdesk.app.bridge import call_later
from quantdesk.core.settings import load_settings, update_settings

COLUMNS = ("Use", "Address", "Free memory")
WARNING = ("Workers speak llama.cpp's RPC protocol: no password, no encryption. Add only "
           "machines on a network you trust.")


def test_worker(endpoint: str) -> str:
    """One line: what the worker offers (pool thread)."""
    from quantdesk.core.rpc.wire import probe
    info = probe(endpoint)
    return (f"{formatting.size(info.free_bytes)} free of {formatting.size(info.total_bytes)}"
            + (f" on {len(info.devices)} devices" if len(info.devices) > 1 else ""))


class MachinesBox(QGroupBox):
    changed = Signal()         # the saved list changed
    tested = Signal(str)       # an endpoint's test finished (its Free memory cell is set)

    def __init__(self, parent=None):
        super().__init__("Machines (workers lending their memory)", parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)   # tests run side by side; each ends within its timeout
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setMaximumHeight(160)
        self.address = QLineEdit(placeholderText="192.168.1.20:50052")
        self.add_button = QPushButton("Add")
        self.test_button = QPushButton("Test all")
        self.remove_button = QPushButton("Remove")
        self.message = QLabel()
        self.message.setWordWrap(True)
        note = QLabel(f"Start one with <code>quantdesk worker --host ADDRESS --allow-remote</code> "
                      f"on the other machine; enabled machines take layers of the next chat "
                      f"load. {WARNING}")
        note.setWordWrap(True)
        note.setObjectName("placeholderText")
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        for i, w in enumerate((self.address, self.add_button, self.test_button, self.remove_button)):
            h.addWidget(w, 1 if i == 0 else 0)
        v = QVBoxLayout(self)
        for w in (self.table, row, self.message, note):
            v.addWidget(w)
        self.add_button.clicked.connect(lambda: self.add_machine(self.address.text()))
        self.address.returnPressed.connect(lambda: self.add_machine(self.address.text()))
        self.test_button.clicked.connect(self.test_all)
        self.remove_button.clicked.connect(self.remove_selected)
        self.table.itemChanged.connect(self._item_changed)
        self._machines = list(load_settings().machines)
        self._fill()

    # ---- the list --------------------------------------------------------------------------
    def machines(self) -> list[dict]:
        return [dict(m) for m in self._machines]

    def _fill(self) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(len(self._machines))
        for r, m in enumerate(self._machines):
            use = QTableWidgetItem()
            use.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            use.setCheckState(Qt.CheckState.Checked if m["enabled"] else Qt.CheckState.Unchecked)
            self.table.setItem(r, 0, use)
            for c, text in ((1, m["endpoint"]), (2, "not tested")):
                item = QTableWidgetItem(text)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(r, c, item)
        self.table.blockSignals(False)

    def _save(self) -> bool:
        try:
            saved = update_settings(machines=self._machines)
        except OSError as exc:
            self.message.setText(f"Could not save the machines: {formatting.one_line(exc)}")
            return False
        self._machines = list(saved.machines)
        self.changed.emit()
        return True

    def add_machine(self, text: str) -> None:
        from quantdesk.core.rpc.endpoints import EndpointError, parse_endpoint
        try:
            endpoint = parse_endpoint(text)
        except EndpointError as exc:
            self.message.setText(str(exc))
            return
        if any(m["endpoint"] == endpoint for m in self._machines):
            self.message.setText(f"{endpoint} is in the list already.")
            return
        self._machines.append({"endpoint": endpoint, "enabled": True})
        if self._save():
            self.address.clear()
            self.message.setText(f"Added {endpoint}.")
            self._fill()
            self.test(endpoint)

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        if not rows:
            self.message.setText("Select a machine to remove.")
            return
        for r in rows:
            del self._machines[r]
        if self._save():
            self._fill()

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0:
            return
        self._machines[item.row()]["enabled"] = item.checkState() == Qt.CheckState.Checked
        self._save()

    # ---- testing ---------------------------------------------------------------------------
    def _row_of(self, endpoint: str) -> int:
        return next((r for r, m in enumerate(self._machines) if m["endpoint"] == endpoint), -1)

    def status(self, endpoint: str) -> str:
        r = self._row_of(endpoint)
        return self.table.item(r, 2).text() if r >= 0 else ""

    def _show(self, endpoint: str, text: str) -> None:
        r = self._row_of(endpoint)
        if r >= 0:
            self.table.item(r, 2).setText(text)
            self.table.item(r, 2).setToolTip(text)
        self.tested.emit(endpoint)

    def test(self, endpoint: str) -> None:
        self._show_pending(endpoint)
        call_later(self.pool, self, lambda: test_worker(endpoint),
                   lambda text: self._show(endpoint, text),
                   lambda why: self._show(endpoint, f"not usable: {why}"))

    def _show_pending(self, endpoint: str) -> None:
        r = self._row_of(endpoint)
        if r >= 0:
            self.table.item(r, 2).setText("testing…")

    def test_all(self) -> None:
        for m in self._machines:
            self.test(m["endpoint"])

    def shutdown(self) -> None:
        self.pool.waitForDone(5000)
