"""Quantize page: pick a source, a type from the table (size, quality, fit), run, chat with it.

Sources: a library model, a Hugging Face model folder, or a folder/.gguf dropped on the page.
The table is the runtime's analyse_source (a pool thread, through the bridge); the run is the
runtime's quantize job (pool thread, progress events, a real cancel). The output is written by
the pipeline as NAME.gguf.part and renamed only when verified, so a failure or cancel leaves
nothing.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout,
                               QHeaderView, QLabel, QMessageBox, QProgressBar, QPushButton,
                               QTableView, QVBoxLayout, QWidget)

from quantdesk.core.runtime.mmproj import projector_output
from quantdesk.core.runtime.quantize import (GGUF, QuantizeRequest, SourceSummary, default_output,
                                             quantize_job)

from ... import formatting
from ...banner import ErrorBanner
from ...bridge import Task, run_task
from ...drops import local_files
from .options import QuantizeOptions
from .source_section import SourceSection
from .types_model import NAME_ROLE, QuantTypesModel


IDLE_TEXT = "pick a type, then Quantize"


class QuantizePage(SourceSection, QWidget):
    """The layout, the type and output, the run; the source is source_section.py's
    (SourceSection)."""

    chat_requested = Signal(str)      # path of the finished model
    report_requested = Signal(str, str)  # reference (the source), the finished model
    quantized = Signal(str)           # a new model was written (and added to the library)
    source_ready = Signal(object)     # SourceSummary of the chosen source, table filled
    job_started = Signal(object)      # the bridge Task of the run, just after it started
    progress = Signal(object)         # core.quantize.Progress, on the GUI thread

    def __init__(self, library=None, parent=None):
        super().__init__(parent)
        self.library = library         # LibraryService (None: no library integration)
        self.setAcceptDrops(True)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)  # one run and one table analysis at a time
        self.summary: SourceSummary | None = None
        self.job: Task | None = None   # the run under way, None once its outcome arrived
        self.result = None
        self.projector: Path | None = None   # the run's vision projector output, if it writes one
        self.listed = None             # the last result the library lists (then "Chat with it")
        self._wanted_type: str | None = None   # the type to select when the table fills
        self._pending_source: tuple[str, str | None] | None = None  # asked for during a run
        self._analysis = 0
        self._build()
        self._connect()
        self._update_buttons()

    # ---- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        title = QLabel("Quantize")
        title.setObjectName("pageTitle")
        self.banner = ErrorBanner()
        self.library_picker = QComboBox()
        self.library_picker.setPlaceholderText("A model from the library…")
        if self.library is not None:
            self.library_picker.setModel(self.library.model)
            # A reset selects row 0; the picker must keep naming the source actually chosen.
            self.library.model.modelReset.connect(self._sync_picker)
        self.folder_button = QPushButton("HF model folder…")
        self.file_button = QPushButton("GGUF file…")
        src_row = QHBoxLayout()
        src_row.addWidget(QLabel("Source"))
        src_row.addWidget(self.library_picker, 1)
        src_row.addWidget(self.folder_button)
        src_row.addWidget(self.file_button)
        self.source_label = QLabel("Pick a source, or drop a model folder or .gguf file here.")
        self.source_label.setObjectName("placeholderText")
        self.source_label.setWordWrap(True)
        self.requant_note = QLabel()
        self.requant_note.setWordWrap(True)
        self.requant_note.setStyleSheet("color:#9a6a00")
        self.requant_box = QCheckBox("Quantize anyway (the source's error adds up)")
        for w in (self.requant_note, self.requant_box):
            w.hide()

        self.types = QuantTypesModel(self)
        self.table = QTableView()
        self.table.setModel(self.types)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)

        self.options = QuantizeOptions()
        self.output, self.threads, self.backend, self.imatrix = (
            self.options.output, self.options.threads, self.options.backend, self.options.imatrix)

        # The four run buttons stay where they are, shown, with fixed labels; only their enabled
        # state follows the job. (Buttons that appeared when a run ended pushed Cancel aside, and a
        # late click on it landed on Quantize and started a second run.)
        self.run_button = QPushButton("Quantize")
        self.run_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel")
        self.chat_button = QPushButton("Chat with it")
        self.chat_button.setObjectName("primary")
        self.chat_button.setToolTip("Load the model just written in the Chat page")
        self.report_button = QPushButton("Quality report…")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat(IDLE_TEXT)
        self.progress_bar.setValue(0)  # Qt draws no text while the value is unset (-1)
        self.status = QLabel("")
        self.status.setObjectName("chatStatus")
        run_row = QHBoxLayout()
        run_row.addWidget(self.progress_bar, 1)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.report_button)
        run_row.addWidget(self.chat_button)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.banner)
        layout.addLayout(src_row)
        layout.addWidget(self.source_label)
        layout.addWidget(self.requant_note)
        layout.addWidget(self.requant_box)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.options)
        layout.addLayout(run_row)
        layout.addWidget(self.status)

    def _connect(self) -> None:
        self.library_picker.activated.connect(self._library_picked)
        self.folder_button.clicked.connect(self._choose_folder)
        self.file_button.clicked.connect(self._choose_file)
        self.table.selectionModel().selectionChanged.connect(self._type_changed)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.chat_button.clicked.connect(
            lambda: self.result and self.chat_requested.emit(str(self.result.path)))
        self.report_button.clicked.connect(
            lambda: self.result and self.report_requested.emit(self.summary.path,
                                                               str(self.result.path)))
        self.requant_box.toggled.connect(self._update_buttons)
        self.options.busy_changed.connect(self._update_buttons)
        self.options.failed.connect(self._show_error)

    # ---- type and output -----------------------------------------------------------------
    def selected_type(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(NAME_ROLE) if rows else None

    def select_type(self, qtype: str) -> None:
        row = self.types.row_of(qtype)
        if row >= 0:
            self.table.selectRow(row)

    def _type_changed(self, *args) -> None:
        qtype = self.selected_type()
        if qtype and self.summary and not self.options.output_edited:
            from quantdesk.core.paths import models_dir
            self.output.setText(str(default_output(models_dir(), self.summary.path, qtype)))
        self._update_buttons()

    # ---- run -----------------------------------------------------------------------------
    def ask_overwrite(self, path: Path) -> bool:
        answer = QMessageBox.question(self, "Quantdesk", f"{path.name} exists. Replace it?")
        return answer == QMessageBox.StandardButton.Yes

    def run(self) -> bool:
        qtype, out = self.selected_type(), self.output.text().strip()
        if self.summary is None or not qtype or not out or self.running:
            return False
        out_path = Path(out).expanduser()
        overwrite = out_path.exists()
        if overwrite and not self.ask_overwrite(out_path):
            return False
        if self.running:  # another start got in while the question was open: one run only
            return False
        # the projector goes next to the model under a name no file has: never replaced
        self.projector = (projector_output(out_path, self.summary.path)
                          if self.options.projector_wanted() else None)
        request = QuantizeRequest(self.summary.path, str(out_path), qtype, **self.options.values(),
                                  overwrite=overwrite,
                                  allow_requantize=self.requant_box.isChecked(),
                                  mmproj_output=str(self.projector) if self.projector else None)
        self.result = None
        self.banner.hide()
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")
        also = f" and {self.projector.name}" if self.projector else ""
        self.status.setText(f"Writing {out_path.name} ({qtype}){also}…")
        self.job = run_task(self._pool, self, quantize_job(request), on_event=self._on_progress,
                            on_finished=self._on_finished, on_failed=self._on_failed,
                            on_cancelled=self._on_cancelled, what="quantization")
        self.job_started.emit(self.job)
        self._update_buttons()
        return True

    @property
    def running(self) -> bool:
        """A quantization is under way: its task (dropped when its outcome arrives) is set."""
        return self.job is not None

    def cancel(self) -> None:
        if self.running:
            self.job.cancel()
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _on_progress(self, p) -> None:
        self.progress_bar.setValue(int(p.fraction * 1000))
        self.progress_bar.setFormat(f"{p.fraction * 100:.0f}% · {formatting.size(p.done_bytes)} "
                                    f"of {formatting.size(p.total_bytes)} · {formatting.eta(p.eta_s)}")
        self.status.setText(f"Tensor {p.index}/{p.count}: {p.tensor}")
        self.progress.emit(p)

    def _on_finished(self, result) -> None:
        self.job = None
        self.result = result
        self.progress_bar.setValue(1000)
        self.progress_bar.setFormat(f"done · {formatting.size(result.size_bytes)}")
        also = f", and its vision projector {self.projector.name}" if self.projector else ""
        self.status.setText(f"Wrote {result.path} ({result.file_type}, "
                            f"{formatting.size(result.size_bytes)}) in {result.seconds:.1f} s{also}")
        if self.library is not None:  # "Chat with it" once the library lists the new model
            self.library.add_quietly(result.path, lambda: self._listed(result))
        else:
            self._listed(result)
        self.options.output_edited = False
        self._type_changed()  # the next default name must not be the file just written
        self._update_buttons()
        self._open_pending()

    def _listed(self, result) -> None:
        self.listed = result
        self._update_buttons()
        self.quantized.emit(str(result.path))

    def _on_failed(self, message: str) -> None:
        self.job = None
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(IDLE_TEXT)
        self.status.setText("Nothing was written.")
        self._show_error(message)  # an already-quantized source's note and box show since analysis
        self._update_buttons()
        self._open_pending()

    def _on_cancelled(self) -> None:
        self.job = None
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(IDLE_TEXT)
        self.status.setText("Cancelled: nothing was written.")
        self._update_buttons()
        self._open_pending()

    def _open_pending(self) -> None:
        if self._pending_source is not None:
            path, qtype = self._pending_source
            self._pending_source = None
            self.set_source(path, qtype)

    def _show_error(self, message: str) -> None:
        lines = str(message).strip().splitlines()
        self.banner.show_messages([lines[0] if lines else "something went wrong"])

    def _update_buttons(self, *args) -> None:
        running = self.running
        calibrating = self.options.calibration is not None
        self.run_button.setEnabled(not running and not calibrating and self.summary is not None
                                   and self.selected_type() is not None)
        self.cancel_button.setEnabled(running)
        done = self.result is not None and not running
        # "Chat with it" once the library lists the new model.
        self.chat_button.setEnabled(done and self.listed is self.result)
        # The quality report scores with llama.cpp, so its reference must be an unquantized GGUF.
        reportable = bool(self.summary and self.summary.kind == GGUF and not self.summary.refusal)
        self.report_button.setEnabled(done and reportable)
        self.report_button.setToolTip(
            "Measure what this quant costs against its source" if reportable or not self.summary
            else "Needs an unquantized GGUF source (the report scores both with llama.cpp)")
        for w in (self.library_picker, self.folder_button, self.file_button, self.table,
                  self.requant_box):
            w.setEnabled(not running and not calibrating)
        self.options.setEnabled(not running)

    # ---- drag and drop -------------------------------------------------------------------
    def dragEnterEvent(self, event):  # noqa: N802 - Qt override
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802
        paths = local_files(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.set_source(paths[0])

    def shutdown(self) -> None:
        """App exit: stop a run (its .part is removed by the pipeline) and wait for the pool."""
        if self.running:
            self.job.cancel()
        self.options.shutdown()
        self._pool.waitForDone(10000)
