"""The chat page's widgets and their layout (its behaviour is chat_page.ChatPage's)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListView, QProgressBar,
                               QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget)

from quantdesk.app.markdown_view import MessageView

from .chat_settings import ChatSettingsPanel
from .composer import Composer
from .plan_panel import PlanPanel


class ChatLayout(QWidget):
    """Conversations on the left; picker, transcript, composer and status in the middle; the
    settings and the memory plan on the right."""

    def __init__(self, conversations, library_model, parent=None):
        super().__init__(parent)
        self.new_button, self.rename_button, self.delete_button = (
            QPushButton("New"), QPushButton("Rename"), QPushButton("Delete"))
        self.conversation_view = QListView()
        self.conversation_view.setModel(conversations)
        self.conversation_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversation_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.conversation_view.setToolTip("Double-click a chat to rename it")
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        for b in (self.new_button, self.rename_button, self.delete_button):
            row.addWidget(b)
        lv.addLayout(row)
        lv.addWidget(self.conversation_view)

        self.model_picker = QComboBox()
        self.model_picker.setModel(library_model)
        self.model_picker.setMinimumContentsLength(14)
        self.model_picker.setPlaceholderText("No model in the library yet")
        self.load_button, self.unload_button = QPushButton("Load"), QPushButton("Unload")
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model_picker, 1)
        top.addWidget(self.load_button)
        top.addWidget(self.unload_button)

        self.view = MessageView()
        self.edit_label = QLabel("Editing your last message: Enter resends it, Esc cancels.")
        self.edit_label.setObjectName("placeholderText")
        self.edit_label.hide()
        self.composer = Composer()
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.stop_button, self.regen_button, self.edit_button = (
            QPushButton("Stop"), QPushButton("Regenerate"), QPushButton("Edit last"))
        buttons = QHBoxLayout()
        for b in (self.edit_button, self.regen_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # llama.cpp gives no load fraction: a busy indicator
        self.progress.setFixedWidth(120)
        self.progress.setMaximumHeight(14)
        self.progress.hide()
        self.status = QLabel("No model loaded.")
        self.status.setObjectName("chatStatus")
        status_row = QHBoxLayout()
        status_row.addWidget(self.progress)
        status_row.addWidget(self.status, 1)
        center = QWidget()
        cv = QVBoxLayout(center)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addLayout(top)
        cv.addWidget(self.view, 1)
        cv.addWidget(self.edit_label)
        cv.addWidget(self.composer)
        cv.addLayout(buttons)
        cv.addLayout(status_row)

        self.settings = ChatSettingsPanel()
        self.plan_panel = PlanPanel()  # below the load settings it depends on
        self.settings.layout().insertWidget(3, self.plan_panel)
        scroll = QScrollArea()
        scroll.setWidget(self.settings)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(230)
        split = QSplitter(Qt.Orientation.Horizontal)
        for w in (left, center, scroll):
            split.addWidget(w)
        split.setStretchFactor(1, 1)
        split.setSizes([190, 620, 270])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
