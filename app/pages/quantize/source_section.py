"""The Quantize page's source: a library model, a Hugging Face folder or a GGUF file (picked, or
dropped on the page), analysed off the GUI thread (core.runtime.quantize.analyse_source) into the
types table. A source asked for during a run opens when the run ends.

A mixin of page.QuantizePage, which builds the widgets used here (library_picker, source_label,
requant_note, requant_box, types, table, options, banner, status, backend) and holds the state
(summary, result, _analysis, _wanted_type, _pending_source, _pool).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from quantdesk.core.runtime.quantize import SourceSummary, analyse_source

from ... import fit, formatting
from ...bridge import call_later
from ..library.library_model import ENTRY_ROLE


class SourceSection:
    """Choosing and analysing the source."""

    def set_source(self, path, qtype: str | None = None) -> None:
        """Analyse a source in the background; the table fills when it is done, with `qtype`
        selected (the type Discover recommended), else the recommended type.

        During a run the source stays (the run's outcome belongs to it): the new one opens when
        the run ends."""
        path = str(path)
        if self.running:
            self._pending_source = (path, qtype)
            self.status.setText(f"{Path(path).name} opens here when this run ends.")
            return
        self._wanted_type = qtype
        self._analysis += 1
        ticket = self._analysis
        self.summary = self.options.source = None
        self.types.set_summary(None)
        self.banner.hide()
        self.requant_note.hide()
        self.requant_box.hide()
        self.requant_box.setChecked(False)
        self.options.set_vision(False, None)
        self.result = None
        self.source_label.setText(f"Reading {Path(path).name}…")
        overrides = dict(self.library.fit_overrides) if self.library is not None else {}
        backend = self.backend.currentText()

        def analyse():  # pool thread: the hardware probe may start a short child process
            return analyse_source(path, hardware=fit.hardware(overrides), n_ctx=fit.BADGE_CTX,
                                  backend=backend)
        call_later(self._pool, self, analyse,
                   lambda s: ticket == self._analysis and self._source_ready(s),
                   lambda message: ticket == self._analysis and self._source_failed(path, message))
        self._update_buttons()

    def _source_ready(self, summary: SourceSummary) -> None:
        self.summary = summary
        self.options.source = summary.path
        if self.library is not None:
            self._sync_picker()
        self.types.set_summary(summary)
        self.source_label.setText(
            f"{summary.kind}: {summary.path} · {formatting.params(summary.parameters)} "
            f"parameters")
        self.options.set_vision(summary.vision, summary.vision_refusal)
        if summary.refusal:
            self.requant_note.setText(summary.refusal)
            self.requant_note.show()
            self.requant_box.show()
        wanted = self._wanted_type if self.types.row_of(self._wanted_type or "") >= 0 else None
        row = self.types.row_of(wanted or summary.recommended or "Q4_K_M")
        self.table.selectRow(max(row, 0))
        if wanted and summary.recommended and wanted != summary.recommended:
            # Discover planned from the repo's config; this table from the real tensors.
            self.status.setText(f"{wanted} is selected as Discover recommended; ★ marks "
                                f"{summary.recommended}, this table's pick from the files.")
        self._update_buttons()
        self.source_ready.emit(summary)

    def _source_failed(self, path: str, message: str) -> None:
        self.source_label.setText(f"Cannot use {Path(path).name} as a source.")
        self._show_error(message)
        self._update_buttons()

    def _sync_picker(self) -> None:
        path = self.summary.path if self.summary else None
        row = self.library.model.row_of(path) if path else -1
        self.library_picker.setCurrentIndex(row)

    def _library_picked(self, row: int) -> None:
        entry = self.library_picker.itemData(row, ENTRY_ROLE) if self.library else None
        if entry is not None:
            self.set_source(entry.info.path if entry.info else entry.path)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Hugging Face model folder")
        if folder:
            self.set_source(folder)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "GGUF model", "", "GGUF (*.gguf)")
        if path:
            self.set_source(path)
