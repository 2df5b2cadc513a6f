"""Qt item models for the Discover page: search results (fetched lazily as the view scrolls),
a repo's quant variants with fit badges, and the download list."""
from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QColor

from quantdesk.app import formatting
from quantdesk.app.fit import FIT_COLOURS
from quantdesk.app.rows_model import RowsModel

ITEM_ROLE = Qt.ItemDataRole.UserRole
FIT_LABELS = {"full-gpu": "fits on GPU", "partial": "partial offload", "cpu": "CPU only", "no-fit": "does not fit"}


class _ItemRows(RowsModel):
    """data() by role through display/colour/tooltip, the row object under ITEM_ROLE."""

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        item = self.item(index.row())
        if item is None:
            return None
        if role == ITEM_ROLE:
            return item
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display(item, index.column())
        if role == Qt.ItemDataRole.ForegroundRole:
            return self.colour(item, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(item, index.column())
        return None

    def display(self, item, column):
        return None

    def colour(self, item, column):
        return None

    def tooltip(self, item, column):
        return None


class SearchResultsModel(_ItemRows):
    """Results of one SearchPager. The view's scrolling calls fetchMore(); the page runs the
    request off the GUI thread (more_wanted) and hands the rows back with append()."""
    COLUMNS = ("Model", "Author", "Params", "Downloads", "Likes", "Updated")
    more_wanted = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.has_more = False
        self.loading = False

    def reset(self, has_more: bool = True) -> None:
        self.set_rows([])
        self.has_more, self.loading = has_more, False

    def append(self, results, has_more: bool) -> None:
        self.loading, self.has_more = False, has_more
        if results:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(results) - 1)
            self._rows.extend(results)
            self.endInsertRows()

    def canFetchMore(self, parent=QModelIndex()):  # noqa: N802
        return not parent.isValid() and self.has_more and not self.loading

    def fetchMore(self, parent=QModelIndex()):  # noqa: N802
        if self.canFetchMore(parent):
            self.loading = True
            self.more_wanted.emit()

    def display(self, r, column):
        mark = {True: "  ✓ convertible", False: "  ✗ not convertible"}.get(r.convertible, "")
        return (r.name + ("  (gated)" if r.gated else "") + mark, r.author, formatting.params(r.parameters),
                f"{r.downloads or 0:,}", f"{r.likes or 0:,}", (r.updated or "")[:10])[column]

    def tooltip(self, r, column):
        if r.convertible is False:
            return f"{r.repo_id} — cannot convert: {r.convert_note}"
        return r.repo_id

    def colour(self, r, column):
        return QColor("#888888") if r.convertible is False else None


class VariantsModel(_ItemRows):
    """One row per quant variant; header/fit columns fill in as each remote header is read."""
    COLUMNS = ("Quant", "Size", "Bits/weight", "Fit", "Files")

    def update_variant(self, variant) -> None:
        for row, v in enumerate(self._rows):
            if v is variant:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def display(self, v, column):
        if column == 0:
            return v.quant + ("" if v.confirmed is not False else f" (header: {v.file_type})")
        if column == 1:
            return formatting.size(v.size_bytes)
        if column == 2:
            return f"{v.bits_per_weight:.2f}" if v.bits_per_weight else "…"
        if column == 3:
            if v.fit:
                label = FIT_LABELS.get(v.fit["fit"], v.fit["fit"])
                return f"{label}, {v.fit['gpu_layers']} GPU layers" if v.fit["gpu_layers"] else label
            return v.fit_note or "reading header…"
        return f"{len(v.files)} parts" if len(v.files) > 1 else v.files[0].name

    def colour(self, v, column):
        if column == 3 and v.fit:
            return QColor(FIT_COLOURS.get(v.fit["fit"], "#333333"))
        return None

    def tooltip(self, v, column):
        if column == 3 and v.fit:
            return v.fit.get("note")
        return "\n".join(f.name for f in v.files)


class DownloadsModel(_ItemRows):
    """DownloadManager tasks, updated in place from its (queued) on_update notifications."""
    COLUMNS = ("File", "State", "Progress", "Speed", "ETA")

    def upsert(self, task) -> None:
        for row, t in enumerate(self._rows):
            if t.id == task.id:
                self._rows[row] = task
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))
                return
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
        self._rows.append(task)
        self.endInsertRows()

    def display(self, t, column):
        if column == 0:
            return t.filename
        if column == 1:
            return t.error if t.state == "failed" else (t.phase if t.state == "running" and t.phase else t.state)
        if column == 2:
            if t.total_bytes:
                return f"{100 * t.done_bytes / t.total_bytes:.0f}% of {formatting.size(t.total_bytes)}"
            return formatting.size(t.done_bytes)
        if column == 3:
            return f"{formatting.size(int(t.speed_bps))}/s" if t.state == "running" and t.speed_bps else ""
        return f"{t.eta_s:.0f} s" if t.state == "running" and t.eta_s else ""

    def colour(self, t, column):
        return QColor("#a12a1d") if column == 1 and t.state == "failed" else None
