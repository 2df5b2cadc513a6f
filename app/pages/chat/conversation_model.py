"""Qt list model over ChatStore conversations (most recently updated first). Titles are editable."""
from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt

ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationListModel(QAbstractListModel):
    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self._items: list = []
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self._items = self.store.list_conversations()
        self.endResetModel()

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
        if role == Qt.ItemDataRole.ToolTipRole:
            return conv.title
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
