"""Images attached to the next message on the chat page: "Attach image…" picks files, the line
under the composer names them, "Remove" drops them; sending hands them to ChatSession.send
(core.runtime), which reads them and refuses a bad one in one line before anything is stored.
The model reads them through its vision projector (an mmproj beside the model file); a model
without one says so when it answers. The images are saved with the message (the chat store), shown
in the transcript as "[image: name]" lines, and "Edit last" attaches them again (set_attachments)
so the edited message keeps them unless "Remove" drops them."""
from __future__ import annotations

from pathlib import Path

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif);;All files (*)"


class ImageAttachments:
    """Mixin for ChatPage: needs attach_button, attachments_label, remove_attachments_button."""

    def _init_attachments(self) -> None:
        self._attachments: list = []   # paths, or stored images as content parts with a name
        self.attach_button.clicked.connect(self.choose_images)
        self.remove_attachments_button.clicked.connect(self.clear_attachments)
        self._show_attachments()

    def choose_images(self) -> None:
        from PySide6.QtWidgets import QFileDialog
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach images", "", IMAGE_FILTER)
        for path in paths:
            self.attach_image(path)

    def attach_image(self, path) -> None:
        self._attachments.append(str(path))
        self._show_attachments()

    def set_attachments(self, images) -> None:
        self._attachments = list(images)
        self._show_attachments()

    def clear_attachments(self) -> None:
        self._attachments = []
        self._show_attachments()

    def attachments(self) -> list:
        return list(self._attachments)

    def _show_attachments(self) -> None:
        names = ", ".join(p.get("name", "image") if isinstance(p, dict) else Path(p).name
                          for p in self._attachments)
        self.attachments_label.setText(f"Attached: {names}" if names else "")
        self.attachments_label.setVisible(bool(names))
        self.remove_attachments_button.setVisible(bool(names))
