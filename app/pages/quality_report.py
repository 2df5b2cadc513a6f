"""Quality report page: compare quants of one model against its reference on the user's text.

Self-contained: `QualityReportPage(pool=QThreadPool.globalInstance())` is a plain QWidget to add
to the main window's page stack. The work runs in quantdesk.core.evaluate.compare (child
processes) on a pool thread; progress and results come back to the GUI thread through queued
signals. The chart (size vs mean KL-divergence, Pareto front joined) and the table export as PNG
and CSV.
"""
from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (QFileDialog, QFormLayout, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QListWidget, QMessageBox, QProgressBar, QPushButton,
                               QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from quantdesk.app.jobs import start_job

COLUMNS = ("Type", "Size (MB)", "Bits/weight", "PPL", "PPL ratio", "KLD mean", "KLD p99",
           "Top-1 agreement", "Model")


class KldChart(QWidget):
    """File size (x) against mean KLD (y, log scale); the Pareto front is joined and highlighted."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.points: list[dict] = []
        self.setMinimumSize(360, 240)

    def set_points(self, points: list[dict]) -> None:
        self.points = points
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        area = QRectF(self.rect()).adjusted(64, 16, -24, -40)
        p.setPen(QPen(self.palette().text().color(), 1))
        p.drawLine(area.bottomLeft(), area.bottomRight())
        p.drawLine(area.bottomLeft(), area.topLeft())
        p.drawText(QRectF(area.left(), area.bottom() + 18, area.width(), 20), Qt.AlignCenter,
                   "file size (MB)")
        p.save()
        p.translate(14, area.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-80, -10, 160, 20), Qt.AlignCenter, "mean KL-divergence")
        p.restore()
        pts = [q for q in self.points if q["y"] > 0]
        if not pts:
            p.drawText(area, Qt.AlignCenter, "Run a comparison to see the chart")
            return
        xs = [q["x"] / 1e6 for q in pts]
        ys = [math.log10(q["y"]) for q in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
        x0, x1 = (x0 - 1, x1 + 1) if x1 == x0 else (x0 - 0.05 * (x1 - x0), x1 + 0.05 * (x1 - x0))
        y1 = y1 if y1 > y0 else y0 + 1

        def at(x: float, y: float) -> QPointF:
            return QPointF(area.left() + (x - x0) / (x1 - x0) * area.width(),
                           area.bottom() - (y - y0) / (y1 - y0) * area.height())

        for decade in range(y0, y1 + 1):
            pos = at(x0, decade)
            p.drawText(QRectF(0, pos.y() - 8, area.left() - 6, 16), Qt.AlignRight | Qt.AlignVCenter,
                       f"1e{decade}")
        for x in (x0, (x0 + x1) / 2, x1):
            pos = at(x, y0)
            p.drawText(QRectF(pos.x() - 40, area.bottom() + 2, 80, 16), Qt.AlignCenter, f"{x:.0f}")
        accent = QColor("#d9822b")
        front = sorted((x, y) for x, y, q in zip(xs, ys, pts) if q["pareto"])
        p.setPen(QPen(accent, 2))
        for a, b in zip(front, front[1:]):
            p.drawLine(at(*a), at(*b))
        for x, y, q in zip(xs, ys, pts):
            c = at(x, y)
            p.setPen(QPen(accent if q["pareto"] else self.palette().text().color(), 1.5))
            p.setBrush(accent if q["pareto"] else Qt.NoBrush)
            p.drawEllipse(c, 4.5, 4.5)
            p.setPen(self.palette().text().color())
            p.drawText(c + QPointF(7, -6), q["label"])
        p.end()


class _Bridge(QObject):
    progress = Signal(object)      # EvalProgress, emitted in the pool thread, delivered queued
    result = Signal(object)        # each QualityReport as soon as it is ready


class QualityReportPage(QWidget):
    def __init__(self, pool: QThreadPool | None = None, parent=None):
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self.reports: list = []
        self.cancel_token = None
        self.bridge = _Bridge(self)
        self.bridge.progress.connect(self._on_progress, Qt.QueuedConnection)
        self.bridge.result.connect(self._on_result, Qt.QueuedConnection)

        self.reference = QLineEdit(placeholderText="F16/BF16/F32 source or a Q8_0 of the same model")
        self.text_file = QLineEdit(placeholderText="bundled English sample")
        self.models = QListWidget()
        self.ctx = QSpinBox(minimum=64, maximum=8192, singleStep=64, value=512)
        self.chunks = QSpinBox(minimum=0, maximum=10000, value=0, specialValueText="all")
        self.progress = QProgressBar(textVisible=True)
        self.status = QLabel("Choose a reference and one or more quants of the same model.")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.chart = KldChart()
        self.run_button = QPushButton("Compare")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.csv_button = QPushButton("Export CSV…", enabled=False)
        self.png_button = QPushButton("Export chart PNG…", enabled=False)
        self._build()

    def _build(self) -> None:
        def picker(edit: QLineEdit, caption: str, pattern: str) -> QWidget:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            h.addWidget(edit)
            b = QPushButton("Browse…")
            b.clicked.connect(lambda: self._pick(edit, caption, pattern))
            h.addWidget(b)
            return row

        form = QFormLayout()
        form.addRow("Reference", picker(self.reference, "Reference model", "GGUF (*.gguf)"))
        form.addRow("Text", picker(self.text_file, "Text to score", "Text (*.txt);;All (*)"))
        models_row = QWidget()
        mh = QHBoxLayout(models_row)
        mh.setContentsMargins(0, 0, 0, 0)
        mh.addWidget(self.models)
        buttons = QVBoxLayout()
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        add.clicked.connect(self._add_models)
        remove.clicked.connect(lambda: [self.models.takeItem(self.models.row(i))
                                        for i in self.models.selectedItems()])
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch()
        mh.addLayout(buttons)
        self.models.setMaximumHeight(110)
        form.addRow("Quants", models_row)
        sizes = QHBoxLayout()
        sizes.addWidget(QLabel("Context"))
        sizes.addWidget(self.ctx)
        sizes.addWidget(QLabel("Windows"))
        sizes.addWidget(self.chunks)
        sizes.addStretch()
        form.addRow("", self._wrap(sizes))

        actions = QHBoxLayout()
        for b in (self.run_button, self.cancel_button):
            actions.addWidget(b)
        actions.addWidget(self.progress, 1)
        for b in (self.csv_button, self.png_button):
            actions.addWidget(b)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.csv_button.clicked.connect(self._export_csv)
        self.png_button.clicked.connect(self._export_png)

        split = QSplitter(Qt.Vertical)
        split.addWidget(self.chart)
        split.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(actions)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)

    @staticmethod
    def _wrap(layout) -> QWidget:
        w = QWidget()
        layout.setContentsMargins(0, 0, 0, 0)
        w.setLayout(layout)
        return w

    def _pick(self, edit: QLineEdit, caption: str, pattern: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, caption, "", pattern)
        if path:
            edit.setText(path)

    def _add_models(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Quantized models", "", "GGUF (*.gguf)")
        self.models.addItems(paths)

    # -- running ---------------------------------------------------------------------------------
    def start(self) -> None:
        from quantdesk.core.evaluate import CancelToken, compare, read_text, sample_text_path
        reference = self.reference.text().strip()
        models = [self.models.item(i).text() for i in range(self.models.count())]
        if not reference or not models:
            self.status.setText("Choose a reference model and at least one quant.")
            return
        text_path = self.text_file.text().strip() or str(sample_text_path())
        n_ctx, chunks = self.ctx.value(), self.chunks.value() or None
        token = self.cancel_token = CancelToken()
        self.reports = []
        self._refresh()
        self._busy(True)
        self.status.setText("Starting…")
        bridge = self.bridge

        def work():
            text = read_text(text_path)
            return compare(models, reference, text, n_ctx=n_ctx, max_chunks=chunks,
                           progress=bridge.progress.emit, cancel=token,
                           on_result=bridge.result.emit)

        start_job(self.pool, self, work, self._on_done, self._on_failed)

    def cancel(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()
            self.status.setText("Cancelling…")

    def _busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.csv_button.setEnabled(not busy and bool(self.reports))
        self.png_button.setEnabled(not busy and bool(self.reports))

    def _on_progress(self, p) -> None:
        self.progress.setValue(int(p.fraction * 100))
        what = "reference" if p.stage == "reference" else f"model {p.index}/{p.count}"
        self.status.setText(f"Scoring {what}: {p.model} — window {p.done}/{p.total}")

    def _on_result(self, report) -> None:
        self.reports.append(report)
        self._refresh()

    def _on_done(self, reports) -> None:
        self.reports = list(reports)
        self._refresh()
        self._busy(False)
        self.progress.setValue(100)
        r = self.reports[0]
        self.status.setText(f"Reference PPL {r.ref_ppl:.3f} over {r.tokens} scored tokens "
                            f"(context {r.n_ctx}). Lower KLD is closer to the reference.")

    def _on_failed(self, exc) -> None:
        self._busy(False)
        self.status.setText("Cancelled." if type(exc).__name__ == "Cancelled" else f"Failed: {exc}")

    def set_reports(self, reports) -> None:
        """Show existing results (also used to render the page without running models)."""
        self.reports = list(reports)
        self._refresh()
        self._busy(False)

    def _refresh(self) -> None:
        from quantdesk.core.evaluate import chart_points, pareto_front
        front = pareto_front(self.reports)
        self.table.setRowCount(len(self.reports))
        for row, (r, best) in enumerate(zip(self.reports, front)):
            cells = (r.file_type + (" ★" if best else ""), f"{r.size_bytes / 1e6:.1f}",
                     f"{r.bits_per_weight:.2f}", f"{r.ppl:.3f}", f"{r.ppl_ratio:.4f}",
                     f"{r.kld_mean:.5f}", f"{r.kld_p99:.5f}", f"{r.top1_agreement * 100:.2f}%",
                     Path(r.model).name)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col not in (0, len(cells) - 1):
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(row, col, item)
        self.chart.set_points(chart_points(self.reports))

    # -- export ----------------------------------------------------------------------------------
    def _export_csv(self) -> None:
        from quantdesk.core.evaluate import EvaluationError, write_csv
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", "quality.csv", "CSV (*.csv)")
        if path:
            try:
                write_csv(self.reports, path)
            except EvaluationError as exc:
                QMessageBox.warning(self, "Export failed", str(exc))

    def export_png(self, path: str) -> bool:
        return self.chart.grab().save(path, "PNG")

    def _export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export chart", "quality.png", "PNG (*.png)")
        if path and not self.export_png(path):
            QMessageBox.warning(self, "Export failed", f"Could not write {path}")
