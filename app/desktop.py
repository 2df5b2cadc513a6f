"""Handing a path to the desktop: "Show in folder", "Open folder". One place, so tests can watch
what the app asked the desktop to open."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices


def open_folder(path) -> bool:
    """Open a folder (or the folder holding a file) in the desktop's file manager."""
    path = Path(str(path))
    folder = path if path.is_dir() else path.parent
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
