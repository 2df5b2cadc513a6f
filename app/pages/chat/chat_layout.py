"""The chat page's widgets and their layout (its behaviour is chat_page.ChatPage's)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QLabel, QListView, QProgressBar,
                               QPushButton, QScrollArea, QSizePolicy, QSplitter, QStyle,
                               QVBoxLayout, QWidget)

from quantdesk.app.elided_label import ElidedLabel
from quantdesk.app.markdown_view import MessageView

from .chat_settings import ChatSettingsPanel
from .composer import Composer
from .conversation_model import ConversationDelegate
from .plan_panel import PlanPanel


class ChatLayout(QWidget):
    """Conversations on the left; picker, transcript, composer and status in the middle; the
    settings and the memory plan on the right.

    Nothing here may widen the window after it is shown (the window keeps its width across pages):
    one-line texts that change (the state line, the plan's cells) elide, longer ones wrap, and the
    side panel is as wide as its own minimum, so it never needs a horizontal scrollbar.
    """

    def __init__(self, conversations, library_model, parent=None):
        super().__init__(parent)
        self.new_button, self.rename_button, self.delete_button = (
            QPushButton("New"), QPushButton("Rename"), QPushButton("Delete"))
        self.conversation_view = QListView()
        self.conversation_view.setModel(conversations)
        self.conversation_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversation_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.conversation_view.setItemDelegate(ConversationDelegate(self.conversation_view))
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
        self.model_picker.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_picker.setPlaceholderText("No model in the library yet")
        self.load_button, self.unload_button = QPushButton("Load"), QPushButton("Unload")
        model_label = QLabel("This chat's model")
        model_label.setToolTip("Each chat keeps its own model: choosing another one here "
                               "switches this chat to it")
        self.model_warning = QLabel()   # the chat's model file is gone
        self.model_warning.setObjectName("modelWarning")
        self.model_warning.setWordWrap(True)
        self.model_warning.setStyleSheet("color: #8a1c12;")
        self.model_warning.hide()
        top = QHBoxLayout()
        top.addWidget(model_label)
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
        self.attach_button = QPushButton("Attach image…")
        self.attach_button.setToolTip("Images the model reads with your next message (it needs "
                                      "its vision projector, an mmproj file beside the model)")
        self.attachments_label = ElidedLabel("")
        self.remove_attachments_button = QPushButton("Remove")
        attached = QHBoxLayout()
        attached.addWidget(self.attachments_label, 1)
        attached.addWidget(self.remove_attachments_button)
        buttons = QHBoxLayout()
        for b in (self.edit_button, self.regen_button, self.attach_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # llama.cpp gives no load fraction: a busy indicator
        self.progress.setFixedWidth(120)
        self.progress.setMaximumHeight(14)
        self.progress.hide()
        self.status = ElidedLabel("No model loaded.")
        self.status.setObjectName("chatStatus")
        status_row = QHBoxLayout()
        status_row.addWidget(self.progress)
        status_row.addWidget(self.status, 1)
        center = QWidget()
        cv = QVBoxLayout(center)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addLayout(top)
        cv.addWidget(self.model_warning)
        cv.addWidget(self.view, 1)
        cv.addWidget(self.edit_label)
        cv.addWidget(self.composer)
        cv.addLayout(attached)
        cv.addLayout(buttons)
        cv.addLayout(status_row)

        self.settings = ChatSettingsPanel()
        self.plan_panel = PlanPanel()  # below the load settings it depends on
        self.settings.layout().insertWidget(3, self.plan_panel)
        self.settings_scroll = scroll = QScrollArea()
        scroll.setWidget(self.settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # As wide as the panel's own minimum plus the vertical scrollbar: never cut, never a
        # horizontal scrollbar (the panel's changing texts elide, so its minimum stays put).
        bar = scroll.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        scroll.setMinimumWidth(self.settings.minimumSizeHint().width() + bar + 4)
        scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        left.setMinimumWidth(150)
        split = QSplitter(Qt.Orientation.Horizontal)
        for w in (left, center, scroll):
            split.addWidget(w)
        for i in range(3):
            split.setCollapsible(i, False)
        split.setStretchFactor(1, 1)
        split.setSizes([170, 600, max(300, scroll.minimumWidth())])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
