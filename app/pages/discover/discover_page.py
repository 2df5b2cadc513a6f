"""Discover page: search the hub, open a model's page (card, licence, quant variants with fit
badges read from each variant's remote header), download into the HF cache, or hand a
safetensors repo to the Quantize page.

Every network call runs off the GUI thread through quantdesk.app.bridge (call_later); download
progress comes from the core DownloadManager's worker threads through a bridge Relay. Mount it with
`DiscoverPage(manager=None)`; it emits `downloaded(path)` when a file lands (refresh the Library)
and, once "Quantize locally…" fetched a safetensors repo's checkpoint into the HF cache
(checkpoint_fetch.py), `quantize_requested(folder, recommended type)`.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QEvent, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QMessageBox, QPushButton, QSplitter, QTableView, QTextBrowser, QVBoxLayout,
                               QWidget)

from quantdesk.app import formatting
from quantdesk.app.formatting import one_line
from quantdesk.app.bridge import Relay, call_later
from .checkpoint_fetch import CheckpointFetch
from .discover_models import DownloadsModel, SearchResultsModel, VariantsModel

FILTERS = (("GGUF models", "gguf"), ("Safetensors (text generation)", "safetensors"), ("All", "all"))
SORTS = (("Trending", "trending"), ("Downloads", "downloads"), ("Likes", "likes"), ("Recently updated", "updated"))
# Cancelling throws the partial file away: ask first when that is this much (or the file is).
CONFIRM_CANCEL_BYTES = 500_000_000


class CardBrowser(QTextBrowser):
    """Read-only Markdown view that never loads anything: no images, no remote content."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._text: str | None = None   # the card shown, drawn again when the theme changes
        self.setOpenLinks(False)
        self.anchorClicked.connect(lambda url: QDesktopServices.openUrl(url) if url.scheme() in ("http", "https") else None)

    def loadResource(self, kind, url):  # noqa: N802 - Qt override
        return None

    def show_markdown(self, text: str) -> None:
        from quantdesk.app.markdown_view import is_dark, markdown_to_html  # strips raw HTML
        self._text = text
        self.setHtml(markdown_to_html(text or "*This repo has no model card.*", is_dark(self)))

    def changeEvent(self, event):  # noqa: N802 - Qt override
        super().changeEvent(event)
        # The theme changed: table borders and code boxes are coloured in the HTML.
        if event.type() == QEvent.Type.PaletteChange and self._text is not None:
            self.show_markdown(self._text)


def _table(model, stretch: int = 0) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    view.setWordWrap(False)
    return view


class DiscoverPage(QWidget):
    downloaded = Signal(str)            # snapshot path of a finished file
    quantize_requested = Signal(str, str)   # fetched checkpoint folder, recommended type ("": none)

    def __init__(self, manager=None, parent=None, n_ctx: int = 4096):
        super().__init__(parent)
        self.n_ctx, self._generation, self._pager, self.details = n_ctx, 0, None, None
        self.recommended_type: str | None = None   # for the safetensors repo shown
        self.convert_refusal: str | None = None     # why the shown safetensors repo cannot be converted
        self._card_license: str | None = None   # the card's front matter, when the hub has none
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(3)
        self.updates = Relay(self)
        if manager is None:
            from quantdesk.core.hub.manager import DownloadManager
            manager = DownloadManager()
        manager.on_update = self.updates
        self.manager = manager

        title = QLabel("Discover")
        title.setObjectName("pageTitle")
        self.query = QLineEdit(placeholderText="Search models on the Hugging Face hub")
        self.filter_box, self.sort_box = QComboBox(), QComboBox()
        for box, items in ((self.filter_box, FILTERS), (self.sort_box, SORTS)):
            for label, value in items:
                box.addItem(label, value)
        self.search_button = QPushButton("Search")
        self.search_button.setObjectName("primary")
        bar = QHBoxLayout()
        for w, stretch in ((title, 0), (self.query, 1), (self.filter_box, 0), (self.sort_box, 0), (self.search_button, 0)):
            bar.addWidget(w, stretch)
        self.message = QLabel()
        self.message.setObjectName("discoverMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color:#8a1c12")
        self.message.hide()
        if manager.warning:  # the saved download list was unreadable and was set aside
            self._error(manager.warning)

        self.results = SearchResultsModel(self)
        self.results_view = _table(self.results)
        self.results_caption = QLabel()
        self.results_caption.setObjectName("placeholderText")
        results_box = QWidget()
        rv = QVBoxLayout(results_box)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.results_caption)
        rv.addWidget(self.results_view, 1)
        self.repo_title = QLabel("Select a model to see its page.")
        self.repo_title.setWordWrap(True)
        self.repo_title.setTextFormat(Qt.TextFormat.RichText)
        self.card = CardBrowser()
        self.variants = VariantsModel(self)
        self.variants_view = _table(self.variants, stretch=4)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primary")
        self.quantize_button = QPushButton("Quantize locally…")
        self.recommendation = QLabel()
        self.recommendation.setWordWrap(True)
        actions = QHBoxLayout()
        for w in (self.recommendation, self.quantize_button, self.download_button):
            actions.addWidget(w, 1 if w is self.recommendation else 0)
        detail = QWidget()
        dv = QVBoxLayout(detail)
        dv.setContentsMargins(0, 0, 0, 0)
        dv.addWidget(self.repo_title)
        dv.addWidget(self.card, 3)
        dv.addWidget(self.variants_view, 2)
        dv.addLayout(actions)
        self.fetch = CheckpointFetch()
        dv.addWidget(self.fetch)
        split = QSplitter()
        split.addWidget(results_box)
        split.addWidget(detail)
        split.setSizes([480, 620])

        self.downloads = DownloadsModel(self)
        self.downloads_view = _table(self.downloads)
        self.downloads_view.setMaximumHeight(150)
        self.pause_button, self.resume_button, self.cancel_button = (QPushButton(t) for t in ("Pause", "Resume", "Cancel"))
        self.token_edit = QLineEdit(placeholderText="Access token (hf_…) for gated or private repos")
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_button = QPushButton("Save token")
        self.token_row = QWidget()
        tr = QHBoxLayout(self.token_row)
        tr.setContentsMargins(0, 0, 0, 0)
        tr.addWidget(QLabel("This repo is gated: accept its terms on the hub, then paste a token:"))
        tr.addWidget(self.token_edit, 1)
        tr.addWidget(self.token_button)
        self.token_row.hide()
        dl_bar = QHBoxLayout()
        dl_bar.addWidget(QLabel("Downloads"))
        dl_bar.addStretch(1)
        for b in (self.pause_button, self.resume_button, self.cancel_button):
            dl_bar.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.message)
        layout.addWidget(split, 1)
        layout.addWidget(self.token_row)
        layout.addLayout(dl_bar)
        layout.addWidget(self.downloads_view)

        self.search_button.clicked.connect(lambda: self.search())
        self.query.returnPressed.connect(lambda: self.search())
        self.results.more_wanted.connect(self._fetch_more)
        self.results_view.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.open_repo(cur.row()))
        self.download_button.clicked.connect(self.download_selected)
        self.quantize_button.clicked.connect(self.quantize_locally)
        self.fetch.ready.connect(self.quantize_requested)
        self.fetch.failed.connect(self._error)
        self.fetch.busy_changed.connect(
            lambda busy: self.quantize_button.setEnabled(not busy and not self.convert_refusal))
        self.pause_button.clicked.connect(lambda: self._on_task(self.manager.pause))
        self.resume_button.clicked.connect(lambda: self._on_task(self.manager.resume))
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.token_button.clicked.connect(self.save_token)
        self.updates.delivered.connect(self._task_updated)
        self.downloads.set_rows(self.manager.tasks())   # paused downloads from the last session
        self._show_repo(None)
        # Not empty before a search: the most downloaded GGUF repos, once the page is up.
        QTimer.singleShot(0, self.show_popular)

    # ---- search ---------------------------------------------------------------------------
    def _error(self, why) -> None:
        """`why`: an exception or the bridge's one line."""
        self.message.setText(one_line(why))
        self.message.show()

    def show_popular(self) -> None:
        """The hub's most downloaded GGUF repos (what the page shows before any search)."""
        if self._pager is not None:   # the user searched already
            return
        self.query.clear()
        self.filter_box.setCurrentIndex(self.filter_box.findData("gguf"))
        self.sort_box.setCurrentIndex(self.sort_box.findData("downloads"))
        self.search(caption="Popular GGUF models (most downloaded on the hub)")

    def search(self, caption: str | None = None) -> None:
        from quantdesk.core.hub import HubError, SearchPager
        self._generation += 1
        self.message.hide()
        self.results.reset(has_more=False)
        query = self.query.text().strip()
        self.results_caption.setText(caption or (f"Results for “{query}”" if query else
                                                 f"{self.filter_box.currentText()}, by "
                                                 f"{self.sort_box.currentText().lower()}"))
        try:   # checks offline mode at once; the request itself runs in the pool
            self._pager = SearchPager(query, filter=self.filter_box.currentData(),
                                      sort=self.sort_box.currentData())
        except HubError as exc:
            self._pager = self._pager or False   # tried: no popular list over a later search
            return self._error(exc)
        self.results.loading = True
        self._fetch_more()

    def _fetch_more(self) -> None:
        pager, gen = self._pager, self._generation
        if not pager:
            return

        def done(rows):
            if gen == self._generation:
                self.results.append(rows, not pager.exhausted)

        def failed(why):
            if gen == self._generation:
                self.results.loading = False
                self._error(why)
        call_later(self.pool, self, pager.next_page, done, failed)

    # ---- model page -------------------------------------------------------------------------
    def open_repo(self, row: int) -> None:
        result = self.results.item(row)
        if result is None:
            return
        from quantdesk.core.hub import repo_details
        from quantdesk.core.hub.card import read_card
        self._generation += 1
        gen = self._generation
        self._card_license = None
        self._show_repo(None, f"<b>{html.escape(result.repo_id)}</b> — loading…")
        call_later(self.pool, self, lambda: repo_details(result.repo_id),
                   lambda d: gen == self._generation and self._show_repo(d), self._error)
        call_later(self.pool, self, lambda: read_card(result.repo_id),
                   lambda card: gen == self._generation and self._show_card(*card), self._error)

    def _show_card(self, text: str, license: str | None) -> None:
        self.card.show_markdown(text)
        self._card_license = license
        if self.details is not None:
            self._show_title()

    def _show_repo(self, details, title: str | None = None) -> None:
        self.details = details
        self.variants.set_rows(details.variants if details else [])
        self.download_button.setEnabled(bool(details and details.variants))
        self.quantize_button.setVisible(bool(details and details.kind == "safetensors"))
        self.recommendation.setText("")
        self.recommended_type = None
        self.convert_refusal = None   # until config.json is judged
        if details is None:
            self.repo_title.setText(title or "Select a model to see its page.")
            self.card.clear()
            return
        self._show_title()
        if details.variants:
            self.variants_view.selectRow(0)
        gen = self._generation
        for variant in details.variants:
            call_later(self.pool, self, lambda v=variant: self._read_header(details, v),
                       lambda v: gen == self._generation and self._variant_read(v),
                       lambda why, v=variant: self._variant_failed(v, why))
        if details.kind == "safetensors":
            from .convert_mark import safetensors_outlook
            call_later(self.pool, self, lambda: safetensors_outlook(details, self.n_ctx),
                       lambda r: gen == self._generation and self._show_recommendation(*r), self._error)

    def _show_title(self) -> None:
        details = self.details
        # The hub's licence, else the card's own front matter; a count the hub lacks comes
        # from the safetensors headers (repo_details) or the first GGUF header read.
        licence = details.license or self._card_license
        bits = [f"licence: {html.escape(licence or 'not stated')}",
                "<span style='color:#9a6a00'>gated: needs a token</span>" if details.gated else "not gated"]
        if details.parameters:
            bits.append(f"{formatting.params(details.parameters)} parameters")
        elif details.variants:
            bits.append("parameters: reading header…")
        if details.kind == "safetensors":
            bits.append(f"original {details.safetensors_dtype or '?'}, {formatting.size(details.safetensors_bytes)}")
        self.repo_title.setText(f"<b>{html.escape(details.repo_id)}</b><br>{' · '.join(bits)}")

    def _read_header(self, details, variant):
        from quantdesk.core.hub import fit_variant, read_variant_header
        from quantdesk.core.hub.variants import learn_from_header
        read_variant_header(details.repo_id, variant, details.sha or "main")
        learn_from_header(details, variant)   # the parameter count, when the hub has none
        return fit_variant(variant, n_ctx=self.n_ctx)

    def _variant_read(self, variant) -> None:
        self.variants.update_variant(variant)
        if self.variants.rowCount():   # bits/weight of the others may follow from a count just learnt
            self.variants.dataChanged.emit(self.variants.index(0, 2),
                                           self.variants.index(self.variants.rowCount() - 1, 2))
        self._show_title()

    def _variant_failed(self, variant, why: str) -> None:
        variant.fit_note = why
        self.variants.update_variant(variant)

    def _show_recommendation(self, verdict, result) -> None:
        from .convert_mark import outlook_text
        _rows, best, _note = result
        self.convert_refusal = None if verdict.ok else verdict.reason
        self.recommended_type = best["type"] if best and verdict.ok else None
        self.recommendation.setText(outlook_text(verdict, result, formatting.size))
        self.quantize_button.setEnabled(verdict.ok and not self.fetch.running)
        self.quantize_button.setToolTip("" if verdict.ok else verdict.reason or "")

    def quantize_locally(self) -> bool:
        """Fetch the shown safetensors repo's checkpoint (or resume, or find it cached); the
        Quantize page gets it through quantize_requested. One fetch at a time."""
        if (self.details is None or self.details.kind != "safetensors" or self.fetch.running
                or self.convert_refusal):
            return False
        self.message.hide()
        return self.fetch.start(self.details.repo_id, "main", self.recommended_type)

    # ---- downloads --------------------------------------------------------------------------
    def download_selected(self) -> None:
        row = self.variants_view.currentIndex().row()
        variant = self.variants.item(row if row >= 0 else 0)
        if self.details is None or variant is None:
            return
        for f in variant.files:
            self.manager.add(self.details.repo_id, f.name, sha256=f.sha256, size=f.size)

    def _selected_task(self):
        return self.downloads.item(self.downloads_view.currentIndex().row())

    def _on_task(self, action) -> None:
        task = self._selected_task()
        if task is not None:
            action(task.id)

    def cancel_selected(self) -> None:
        """Cancel deletes the partial file: for a big download, ask first (Pause keeps it)."""
        task = self._selected_task()
        if task is None or task.state in ("done", "cancelled"):
            return
        at_stake = max(task.total_bytes or 0, task.done_bytes or 0)
        if at_stake >= CONFIRM_CANCEL_BYTES and not self.ask_confirmation(
                f"Cancel the download of {task.filename} ({formatting.size(at_stake)})?\n\n"
                f"The {formatting.size(task.done_bytes)} downloaded so far will be deleted. "
                "Pause keeps them for later."):
            return
        self.manager.cancel(task.id)

    def ask_confirmation(self, text: str) -> bool:
        """A yes/no question (tests replace this)."""
        answer = QMessageBox.question(self, "Quantdesk", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    @Slot(object)
    def _task_updated(self, task) -> None:
        self.downloads.upsert(task)
        if task.state == "done" and task.path:
            self.downloaded.emit(task.path)
        elif task.state == "failed" and task.needs_token:
            self.token_row.show()
            self.token_edit.setFocus()

    def save_token(self) -> None:
        from quantdesk.core.hub.connection import save_token
        token = self.token_edit.text().strip()
        if not token:
            return

        def saved(_user):
            self.token_edit.clear()
            self.token_row.hide()
            self.message.hide()
            for t in self.manager.tasks():
                if t.state == "failed" and t.needs_token:
                    self.manager.resume(t.id)
        call_later(self.pool, self, lambda: save_token(token), saved, self._error)

    def shutdown(self) -> None:
        """Pause running downloads (their partial files resume next time) and wait for jobs."""
        self.manager.shutdown()
        self.fetch.shutdown()
        self.pool.waitForDone(5000)
