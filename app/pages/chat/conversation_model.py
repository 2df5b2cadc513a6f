"""Qt list model over ChatStore conversations (most recently updated first). Titles are editable.

Each row also says which model the conversation uses (MODEL_ROLE, drawn as a second line by
ConversationDelegate), so picking a conversation never switches models behind the person's back.
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from quantdesk.core.runtime.chat import ConversationModel

ID_ROLE = Qt.ItemDataRole.UserRole
MODEL_ROLE = Qt.ItemDataRole.UserRole + 1   # "name.gguf", "name.gguf (file missing)", …


class ConversationListModel(QAbstractListModel):
    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self._items: list = []
        self._models: dict[int, str] = {}   # cid -> its model, described (stat() once)
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self._items = self.store.list_conversations()
        self._models = {c.id: ConversationModel(c.model_path).describe() for c in self._items}
        self.endResetModel()

    def refresh(self, cid: int) -> None:
        """Read one conversation again (its model changed) without resetting the selection."""
        row = self.row_of(cid)
        if row < 0:
            return
        conv = self._items[row] = self.store.get_conversation(cid)
        self._models[cid] = ConversationModel(conv.model_path).describe()
        self.dataChanged.emit(self.index(row), self.index(row))

    def row_of(self, cid: int) -> int:
        return next((i for i, c in enumerate(self._items) if c.id == cid), -1)

    def conversation(self, row: int):
        return self._items[row] if 0 <= row < len(self._items) else None

    def rowCount(self, parent=QModelIndex()):  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self._items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        conv = self.conversation(index.row())
        if conv is None:
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return conv.title
        if role == ID_ROLE:
            return conv.id
        if role == MODEL_ROLE:
            return self._models.get(conv.id, "")
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{conv.title}\nModel: {self._models.get(conv.id, '')}"
        return None

    def flags(self, index):
        return super().flags(index) | Qt.ItemFlag.ItemIsEditable

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole):  # noqa: N802
        conv = self.conversation(index.row())
        title = str(value).strip()
        if conv is None or role != Qt.ItemDataRole.EditRole or not title:
            return False
        self.store.update_conversation(conv.id, title=title)
        self._items[index.row()] = self.store.get_conversation(conv.id)
        self.dataChanged.emit(index, index)
        return True


class ConversationDelegate(QStyledItemDelegate):
    """Two lines per chat: its title, and under it, dimmer, its model; each elided to the list's
    width (the full text is the row's tooltip)."""
    PADDING = 3

    def sizeHint(self, option, index):  # noqa: N802 - Qt override
        size = super().sizeHint(option, index)
        return QSize(size.width(), 2 * option.fontMetrics.lineSpacing() + 2 * self.PADDING)

    def paint(self, painter, option, index):
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        title, opt.text = opt.text, ""
        style = opt.widget.style() if opt.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text_colour = opt.palette.color(QPalette.ColorRole.HighlightedText if selected
                                        else QPalette.ColorRole.Text)
        rect = opt.rect.adjusted(self.PADDING + 1, self.PADDING, -self.PADDING, -self.PADDING)
        fm, line = opt.fontMetrics, opt.fontMetrics.lineSpacing()
        painter.save()
        painter.setPen(text_colour)
        painter.drawText(QRect(rect.x(), rect.y(), rect.width(), line),
                         int(Qt.AlignmentFlag.AlignLeft), fm.elidedText(title, Qt.TextElideMode.ElideRight, rect.width()))
        model = index.data(MODEL_ROLE) or ""
        if not selected:
            painter.setPen(opt.palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(rect.x(), rect.y() + line, rect.width(), line),
                         int(Qt.AlignmentFlag.AlignLeft),
                         fm.elidedText(model, Qt.TextElideMode.ElideRight, rect.width()))
        painter.restore()
