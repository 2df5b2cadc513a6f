"""Right-click menus installed by the window on a page's views (the page keeps its own API):
the Chat page's conversation list gets Rename and Delete."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu


def conversation_menu(page) -> QMenu:
    """Rename / Delete for the selected conversation, through the page's public methods."""
    menu = QMenu(page)
    has = page.current_conversation_id() is not None
    menu.addAction("Rename", lambda: page.rename_conversation()).setEnabled(has)
    menu.addAction("Delete…", page.delete_conversation).setEnabled(has)
    return menu


def install_conversation_menu(page) -> None:
    view = page.conversation_view
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def show(pos):
        index = view.indexAt(pos)
        if not index.isValid():
            return
        from quantdesk.app.pages.chat.conversation_model import ID_ROLE
        cid = index.data(ID_ROLE)
        if cid != page.current_conversation_id():
            page.select_conversation(cid)    # the menu acts on the row clicked
        conversation_menu(page).exec(view.viewport().mapToGlobal(pos))
    view.customContextMenuRequested.connect(show)
