"""The Quantize page's table of output types: bits/weight, expected size, quality, fit badge.

The rows are core.runtime.quantize's TypeRows (analyse_source, run on a pool thread); this model
only shows them.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from quantdesk.core.runtime.quantize import SourceSummary, TypeRow

from ... import fit, formatting
from ...rows_model import RowsModel

COLUMNS = ("Type", "Bits/weight", "Expected size", "Quality", "Fit")
FIT_COLUMN = COLUMNS.index("Fit")
NAME_ROLE = Qt.ItemDataRole.UserRole


class QuantTypesModel(RowsModel):
    COLUMNS = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self._recommended: str | None = None

    def set_summary(self, summary: SourceSummary | None) -> None:
        self.beginResetModel()
        self._rows = list(summary.rows) if summary else []
        self._recommended = summary.recommended if summary else None
        self.endResetModel()

    def row_of(self, name: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.name == name), -1)

    def type_row(self, row: int) -> TypeRow | None:
        return self.item(row)

    def flags(self, index):
        r = self.type_row(index.row())
        if r is None:
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsSelectable
        # A type whose kernel this build lacks stays visible (with why) but cannot be picked.
        return base | Qt.ItemFlag.ItemIsEnabled if r.kernels_ready else base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        r = self.type_row(index.row())
        if r is None:
            return None
        col = index.column()
        if role == NAME_ROLE:
            return r.name
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(r, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == FIT_COLUMN and r.plan is not None:
            return QColor(fit.FIT_COLOURS.get(r.plan.fit, "#333333"))
        if role == Qt.ItemDataRole.ToolTipRole:
            if not r.kernels_ready:
                return "this build has no kernel for a tensor type this mix needs"
            if col == FIT_COLUMN and r.plan is not None:
                return fit.tooltip(r.plan)
            return r.hint
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, r: TypeRow, col: int):
        if col == 0:
            return r.name + ("  ★" if r.name == self._recommended else "")
        if col == 1:
            return f"{r.bits_per_weight:.2f}"
        if col == 2:
            return formatting.size(r.size_bytes)
        if col == 3:
            return r.quality
        if r.plan is None:
            return "—"
        return fit.badge(r.plan)
