"""The Quantize page's run options: output file, threads, backend, importance matrix — typed in,
or computed here on the user's text ("Calibrate on my text…": the runtime's calibrate job, run
through the bridge; the evaluation child checks the cancel token between chunks) — and, for a
multimodal HF folder, whether to also write its vision projector (mmproj)."""
from __future__ import annotations

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QWidget)

from quantdesk.core.runtime.quantize import CalibrateRequest, calibrate_job

from ...bridge import Task, run_task


def _row(edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row


class QuantizeOptions(QWidget):
    busy_changed = Signal(bool)   # a calibration started (True) or ended (False)
    failed = Signal(str)          # one line for the page's banner

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source: str | None = None   # set by the page when a source is ready
        self.calibration: Task | None = None   # the calibration under way, else None
        self.calibration_chunks: int | None = None  # None: the whole text
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self.output = QLineEdit()
        self.output_button = QPushButton("…")
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("auto")
        self.threads.setToolTip("CPU threads for the kernels (auto = all cores)")
        self.backend = QComboBox()
        self.backend.addItems(["auto", "cpu", "cuda"])
        self.backend.setToolTip("auto uses a CUDA GPU when one is usable, else the CPU")
        self.imatrix = QLineEdit()
        self.imatrix.setPlaceholderText("optional importance matrix (.gguf / .dat)")
        self.imatrix_button = QPushButton("…")
        self.calibrate_button = QPushButton("Calibrate on my text…")
        self.calibrate_button.setToolTip("Compute an importance matrix by running a text of yours "
                                         "through the source model (better low-bit quants)")
        self.calibrate_status = QLabel()
        self.calibrate_status.setObjectName("placeholderText")
        self.calibrate_stop = QPushButton("Stop")
        self.calibrate_stop.hide()
        # Shown for an HF folder with a vision tower: its projector is written next to the
        # model, in the same run, unless unticked (or refused: then the reason is its tooltip).
        self.projector = QCheckBox("Also write the vision projector (mmproj)")
        im_row = _row(self.imatrix, self.imatrix_button)
        for w in (self.calibrate_button, self.calibrate_status, self.calibrate_stop):
            im_row.addWidget(w)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Output", _row(self.output, self.output_button))
        form.addRow("Threads", self.threads)
        form.addRow("Backend", self.backend)
        form.addRow("Importance matrix", im_row)
        form.addRow("Vision", self.projector)
        self._form = form
        self.set_vision(False, None)
        # True once the user typed or chose an output path: the default then stops following
        # the chosen type.
        self.output_edited = False
        self.output.textEdited.connect(self._typed)
        self.output_button.clicked.connect(self._choose_output)
        self.imatrix_button.clicked.connect(self._choose_imatrix)
        self.calibrate_button.clicked.connect(self._choose_text)
        self.calibrate_stop.clicked.connect(self.stop_calibration)

    def values(self) -> dict:
        return {"backend": self.backend.currentText(), "threads": self.threads.value() or None,
                "imatrix": self.imatrix.text().strip() or None}

    def set_vision(self, vision: bool, refusal: str | None) -> None:
        """The source's vision tower: none (row hidden), convertible (ticked), or refused."""
        self._form.setRowVisible(self.projector, vision)
        self.projector.setEnabled(vision and refusal is None)
        self.projector.setChecked(vision and refusal is None)
        self.projector.setToolTip(refusal or "llama.cpp's second file for image input, written "
                                             "as mmproj-<model>-f16.gguf next to the model")

    def projector_wanted(self) -> bool:
        return self.projector.isEnabled() and self.projector.isChecked()

    def _typed(self, _text: str) -> None:
        self.output_edited = True

    def _choose_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Write the model to", self.output.text(),
                                              "GGUF (*.gguf)")
        if path:
            self.output.setText(path if path.endswith(".gguf") else path + ".gguf")
            self.output_edited = True

    def _choose_imatrix(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Importance matrix", "",
                                              "Importance matrix (*.gguf *.dat);;All files (*)")
        if path:
            self.imatrix.setText(path)

    # ---- calibration ---------------------------------------------------------------------
    def _choose_text(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Calibration text", "",
                                              "Text (*.txt *.md);;All files (*)")
        if path:
            self.calibrate(path)

    def calibrate(self, text_path: str) -> bool:
        if not self.source or self.calibration is not None:
            return False
        request = CalibrateRequest(self.source, text_path, max_chunks=self.calibration_chunks)
        self.calibrate_status.setText("Calibrating: starting the model…")
        self.calibrate_stop.show()
        self.calibrate_button.setEnabled(False)
        self.calibration = run_task(self._pool, self, calibrate_job(request),
                                    on_event=self._calibration_progress,
                                    on_finished=self._calibrated,
                                    on_failed=self._calibration_failed,
                                    on_cancelled=self._calibration_stopped, what="calibration")
        self.busy_changed.emit(True)
        return True

    def stop_calibration(self) -> None:
        if self.calibration is not None:
            self.calibration.cancel()
            self.calibrate_status.setText("Stopping…")

    def _calibration_progress(self, chunks) -> None:
        done, total = chunks
        self.calibrate_status.setText(f"Calibrating: chunk {done}/{total}")

    def _calibrated(self, result) -> None:
        self.imatrix.setText(str(result.path))
        self._calibration_ended("Importance matrix ready.")

    def _calibration_stopped(self) -> None:
        self._calibration_ended("Calibration stopped.")

    def _calibration_failed(self, message: str) -> None:
        self._calibration_ended("")
        self.failed.emit(message)

    def _calibration_ended(self, text: str) -> None:
        self.calibration = None
        self.calibrate_status.setText(text)
        self.calibrate_stop.hide()
        self.calibrate_button.setEnabled(True)
        self.busy_changed.emit(False)

    def shutdown(self) -> None:
        self.stop_calibration()
        self._pool.waitForDone(10000)
