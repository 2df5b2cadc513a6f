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

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSplitter,
                               QVBoxLayout, QWidget)

from quantdesk.app.formatting import one_line
from quantdesk.app.bridge import Relay, call_later
from .checkpoint_fetch import CheckpointFetch
from .discover_models import DownloadsModel, SearchResultsModel, VariantsModel
# Re-exported: tests and older code name them from this module.
from .discover_widgets import CardBrowser, table_view  # noqa: F401
from .downloads_section import CONFIRM_CANCEL_BYTES, DownloadsSection  # noqa: F401
from .repo_view import RepoView

FILTERS = (("GGUF models", "gguf"), ("Safetensors (text generation)", "safetensors"), ("All", "all"))
SORTS = (("Trending", "trending"), ("Downloads", "downloads"), ("Likes", "likes"), ("Recently updated", "updated"))


class DiscoverPage(RepoView, DownloadsSection, QWidget):
    """The layout, the search and the glue; the model page is repo_view.py's (RepoView), the
    downloads' actions downloads_section.py's (DownloadsSection)."""

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
        self.results_view = table_view(self.results)
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
        self.variants_view = table_view(self.variants, stretch=4)
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
        self.downloads_view = table_view(self.downloads)
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

    # ---- downloads (their actions: downloads_section.py) -------------------------------------
    @Slot(object)
    def _task_updated(self, task) -> None:
        self.downloads.upsert(task)
        if task.state == "done" and task.path:
            self.downloaded.emit(task.path)
        elif task.state == "failed" and task.needs_token:
            self.token_row.show()
            self.token_edit.setFocus()

    def shutdown(self) -> None:
        """Pause running downloads (their partial files resume next time) and wait for jobs."""
        self.manager.shutdown()
        self.fetch.shutdown()
        self.pool.waitForDone(5000)
