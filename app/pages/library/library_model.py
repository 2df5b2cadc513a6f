"""Qt table model over Library.entries(). The data is fetched in a worker; the model only shows it."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from quantdesk.app import fit, formatting
from quantdesk.app.rows_model import RowsModel

COLUMNS = ("Name", "Quant", "Params", "Size", "Context", "Template", "Source", "Fit")
FIT_COLUMN = COLUMNS.index("Fit")
PATH_ROLE = Qt.ItemDataRole.UserRole
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1


class LibraryTableModel(RowsModel):
    COLUMNS = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self._fits: dict = {}  # path string -> Plan, or a one-line reason it could not be planned
        self._names: list[str] = []

    def set_entries(self, entries: list) -> None:
        from quantdesk.core.runtime.library import display_names
        self._names = display_names(entries)   # look-alike names say where they are from
        self.set_rows(entries)

    def name(self, row: int) -> str:
        return self._names[row] if 0 <= row < len(self._names) else ""

    def set_fits(self, fits: dict) -> None:
        """Fit verdicts computed off the GUI thread (LibrarySession.fit_verdicts); only that column changes."""
        self._fits = dict(fits)
        if self._rows:
            self.dataChanged.emit(self.index(0, FIT_COLUMN),
                                  self.index(len(self._rows) - 1, FIT_COLUMN))

    def fit_of(self, path):
        """The Plan (or reason string) for a path, None while not computed."""
        return self._fits.get(str(path))

    def entries(self) -> list:
        return list(self._rows)

    def entry(self, row: int):
        return self.item(row)

    def row_of(self, path) -> int:
        target = str(path)
        for row, entry in enumerate(self._rows):
            if str(entry.path) == target or (entry.info and str(entry.info.path) == target):
                return row
        return -1

    def flags(self, index):
        entry = self.entry(index.row())
        if entry is None:
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsSelectable
        # Broken files stay listed (so the user sees why) but cannot be picked for chat.
        return base | Qt.ItemFlag.ItemIsEnabled if entry.info is not None else base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        entry = self.entry(index.row())
        if entry is None:
            return None
        if role == PATH_ROLE:
            return str(entry.path)
        if role == ENTRY_ROLE:
            return entry
        info = entry.info
        if index.column() == FIT_COLUMN and info is not None:
            return self._fit_data(entry, role)
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(entry.path) if info else f"{entry.path}\n{entry.error}"
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        col = index.column()
        if col == 0:
            return self.name(index.row())
        if col == 6:
            return entry.source
        if info is None:
            return "error" if col == 1 else ""
        return (None, info.file_type, formatting.params(info.parameters),
                formatting.size(info.size_bytes), str(info.context_length),
                "yes" if info.has_chat_template else "no")[col]

    def _fit_data(self, entry, role):
        plan = self._fits.get(str(entry.path))
        if plan is None:
            return "…" if role == Qt.ItemDataRole.DisplayRole else None
        if isinstance(plan, str):  # the planner could not read it
            return {Qt.ItemDataRole.DisplayRole: "?", Qt.ItemDataRole.ToolTipRole: plan}.get(role)
        if role == Qt.ItemDataRole.DisplayRole:
            return fit.badge(plan)
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor(fit.FIT_COLOURS.get(plan.fit, "#333333"))
        if role == Qt.ItemDataRole.ToolTipRole:
            return fit.tooltip(plan)
        return None
