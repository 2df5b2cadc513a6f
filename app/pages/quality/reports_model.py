"""The Quality table: one row per QualityReport, the Pareto-best ones starred."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from quantdesk.app.rows_model import RowsModel

REPORT_ROLE = Qt.ItemDataRole.UserRole
STAR_MEANING = ("best trade-off: no other quant in this comparison is both smaller and closer to "
                "the reference (lower mean KL-divergence). The chart joins these points.")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class QualityTableModel(RowsModel):
    COLUMNS = ("Type", "Size (MB)", "Bits/weight", "PPL", "PPL ratio", "KLD mean", "KLD p99",
               "Top-1 agreement", "Model")

    def set_reports(self, reports) -> None:
        from quantdesk.core.evaluate import pareto_front
        self.set_rows(zip(reports, pareto_front(reports)))

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if (role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal
                and section == 0):
            return f"★ {STAR_MEANING}"
        return super().headerData(section, orientation, role)

    def reports(self) -> list:
        return [report for report, _best in self._rows]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        row = self.item(index.row())
        if row is None:
            return None
        report, best = row
        if role == REPORT_ROLE:
            return report
        # Numbers read right-aligned; the type and the file name are text.
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return None if index.column() in (0, len(self.COLUMNS) - 1) else _RIGHT
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == len(self.COLUMNS) - 1:
            return report.model
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 0 and best:
            return f"★ {STAR_MEANING}"
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return (report.file_type + (" ★" if best else ""), f"{report.size_bytes / 1e6:.1f}",
                f"{report.bits_per_weight:.2f}", f"{report.ppl:.3f}", f"{report.ppl_ratio:.4f}",
                f"{report.kld_mean:.5f}", f"{report.kld_p99:.5f}",
                f"{report.top1_agreement * 100:.2f}%", Path(report.model).name)[index.column()]
