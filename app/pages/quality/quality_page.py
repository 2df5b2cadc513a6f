"""Quality report page: compare quants of one model against its reference on the user's text.

`QualityReportPage(pool=QThreadPool.globalInstance(), library=LibraryService)` is a plain QWidget
for the main window's page stack. The reference and the quants are picked from the library's
models (or Browse…/Add file…); `set_reference(path)` and `add_model(path)` fill it from elsewhere
(the Quantize page's "Quality report…"). core.evaluate refuses a quant of another model before
scoring, and scores only the quants it has no report for yet. The work is quantdesk.core.evaluate.compare (child processes), run
through quantdesk.app.bridge: its progress and each report arrive as the task's events. The chart
(size vs mean KL-divergence, Pareto front joined) and the table export as PNG and CSV.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QListWidget, QMessageBox,
                               QProgressBar, QPushButton, QSpinBox, QSplitter, QTableView,
                               QVBoxLayout, QWidget)

from quantdesk.app.bridge import run_task

from .kld_chart import KldChart
from .reports_model import STAR_MEANING, QualityTableModel


def _library_picker(library, placeholder: str) -> QComboBox:
    """A combo box over the library's models (broken entries shown, not pickable)."""
    box = QComboBox()
    box.setPlaceholderText(placeholder)
    box.setMinimumContentsLength(18)
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    if library is not None:
        box.setModel(library.model)
        box.setCurrentIndex(-1)
    else:
        box.hide()
    return box


class QualityReportPage(QWidget):
    def __init__(self, pool: QThreadPool | None = None, parent=None, library=None):
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self.library = library         # LibraryService: its models are offered as picks
        self.reports: list = []
        self.task = None               # the running comparison (a bridge Task), None when idle

        self.reference = QLineEdit(placeholderText="F16/BF16/F32 source or a Q8_0 of the same model")
        self.text_file = QLineEdit(placeholderText="bundled English sample")
        self.reference_picker = _library_picker(library, "…or pick a library model")
        self.quant_picker = _library_picker(library, "Add a library model…")
        self.models = QListWidget()
        self.ctx = QSpinBox(minimum=64, maximum=8192, singleStep=64, value=512)
        self.chunks = QSpinBox(minimum=0, maximum=10000, value=0, specialValueText="all")
        self.progress = QProgressBar(textVisible=True)
        self.status = QLabel("Choose a reference and one or more quants of the same model.")
        self.status.setWordWrap(True)
        self.results = QualityTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.results)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.chart = KldChart()
        self.star_legend = QLabel(f"★ {STAR_MEANING}")
        self.star_legend.setObjectName("placeholderText")
        self.star_legend.setWordWrap(True)
        self.run_button = QPushButton("Compare")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.csv_button = QPushButton("Export CSV…", enabled=False)
        self.png_button = QPushButton("Export chart PNG…", enabled=False)
        self.title = QLabel("Quality")
        self.title.setObjectName("pageTitle")
        self._build()
        if library is not None:
            # A reset of the list selects its first row: the pickers must keep naming what is
            # chosen (the reference) or nothing (the quant picker is a menu of models to add).
            library.model.modelReset.connect(self._sync_pickers)

    def _build(self) -> None:
        def picker(edit: QLineEdit, caption: str, pattern: str, library_box=None) -> QWidget:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            h.addWidget(edit, 2)
            if library_box is not None:
                h.addWidget(library_box, 1)
            b = QPushButton("Browse…")
            b.clicked.connect(lambda: self._pick(edit, caption, pattern))
            h.addWidget(b)
            return row

        form = QFormLayout()
        form.addRow("Reference", picker(self.reference, "Reference model", "GGUF (*.gguf)",
                                        self.reference_picker))
        form.addRow("Text", picker(self.text_file, "Text to score", "Text (*.txt);;All (*)"))
        models_row = QWidget()
        mh = QHBoxLayout(models_row)
        mh.setContentsMargins(0, 0, 0, 0)
        mh.addWidget(self.models)
        buttons = QVBoxLayout()
        add, remove = QPushButton("Add file…"), QPushButton("Remove")
        add.clicked.connect(self._add_models)
        remove.clicked.connect(lambda: [self.models.takeItem(self.models.row(i))
                                        for i in self.models.selectedItems()])
        self.reference_picker.activated.connect(self._reference_picked)
        self.quant_picker.activated.connect(self._quant_picked)
        buttons.addWidget(self.quant_picker)
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
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addLayout(actions)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)
        layout.addWidget(self.star_legend)

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

    def _library_path(self, box: QComboBox, row: int) -> str | None:
        from quantdesk.app.pages.library.library_model import ENTRY_ROLE
        entry = box.itemData(row, ENTRY_ROLE)
        if entry is None or entry.info is None:
            return None
        return str(entry.info.path)

    def _reference_picked(self, row: int) -> None:
        path = self._library_path(self.reference_picker, row)
        if path:
            self.set_reference(path)

    def _quant_picked(self, row: int) -> None:
        path = self._library_path(self.quant_picker, row)
        if path:
            self.add_model(path)
        self.quant_picker.setCurrentIndex(-1)   # a menu of models to add, not a selection

    def _add_models(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Quantized models", "", "GGUF (*.gguf)")
        for path in paths:
            self.add_model(path)

    # -- filled from elsewhere -------------------------------------------------------------------
    def set_reference(self, path: str) -> None:
        self.reference.setText(str(path))
        if self.library is not None:   # the picker names the library model, when it is one
            self.reference_picker.setCurrentIndex(self.library.model.row_of(path))

    def _sync_pickers(self) -> None:
        reference = self.reference.text().strip()
        self.reference_picker.setCurrentIndex(
            self.library.model.row_of(reference) if reference else -1)
        self.quant_picker.setCurrentIndex(-1)

    def add_model(self, path: str) -> None:
        """Add a quant to compare; one already listed is not listed twice."""
        if str(path) not in self.model_paths():
            self.models.addItem(str(path))

    def model_paths(self) -> list[str]:
        return [self.models.item(i).text() for i in range(self.models.count())]

    # -- running ---------------------------------------------------------------------------------
    def start(self) -> None:
        from quantdesk.core.evaluate import compare, read_text, sample_text_path
        reference = self.reference.text().strip()
        models = self.model_paths()
        if not reference or not models:
            self.status.setText("Choose a reference model and at least one quant.")
            return
        text_path = self.text_file.text().strip() or str(sample_text_path())
        n_ctx, chunks = self.ctx.value(), self.chunks.value() or None
        self.reports = []
        self._refresh()
        self._busy(True)
        self.status.setText("Starting…")

        def work(report, cancel):
            text = read_text(text_path)
            return compare(models, reference, text, n_ctx=n_ctx, max_chunks=chunks,
                           progress=lambda p: report(("progress", p)), cancel=cancel,
                           on_result=lambda r: report(("result", r)))

        self.task = run_task(self.pool, self, work, on_event=self._on_event,
                             on_finished=self._on_done, on_failed=self._on_failed,
                             on_cancelled=self._on_cancelled, what="comparison")

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.status.setText("Cancelling…")

    def shutdown(self) -> None:
        """The window is closing: a running comparison stops at its next check (its child
        process ends with it)."""
        self.cancel()

    def _busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.csv_button.setEnabled(not busy and bool(self.reports))
        self.png_button.setEnabled(not busy and bool(self.reports))

    def _on_event(self, event) -> None:
        kind, value = event
        if kind == "progress":
            self._on_progress(value)
        else:  # each report as soon as it is ready
            self.reports.append(value)
            self._refresh()

    def _on_progress(self, p) -> None:
        self.progress.setValue(int(p.fraction * 100))
        what = "reference" if p.stage == "reference" else f"model {p.index}/{p.count}"
        self.status.setText(f"Scoring {what}: {p.model} — window {p.done}/{p.total}")

    def _on_done(self, reports) -> None:
        self.task = None
        self.reports = list(reports)
        self._refresh()
        self._busy(False)
        self.progress.setValue(100)
        r = self.reports[0]
        self.status.setText(f"Reference PPL {r.ref_ppl:.3f} over {r.tokens} scored tokens "
                            f"(context {r.n_ctx}). Lower KLD is closer to the reference.")

    def _on_failed(self, why: str) -> None:
        self.task = None
        self._busy(False)
        self.status.setText(f"Failed: {why}")

    def _on_cancelled(self) -> None:
        self.task = None
        self._busy(False)
        self.status.setText("Cancelled.")

    def set_reports(self, reports) -> None:
        """Show existing results (also used to render the page without running models)."""
        self.reports = list(reports)
        self._refresh()
        self._busy(False)

    def _refresh(self) -> None:
        from quantdesk.core.evaluate import chart_points
        self.results.set_reports(self.reports)
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
