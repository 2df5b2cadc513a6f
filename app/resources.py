"""Locating the files in resources/ (icon, stylesheet) from the source tree or a frozen build."""
from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """resources/ next to app/ in a checkout or editable install; under sys._MEIPASS when frozen."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def icon_path() -> Path:
    return resources_dir() / "quantdesk.svg"


def stylesheet() -> str:
    """The app stylesheet, or "" when the file is missing (the app still works, just plainer)."""
    try:
        return (resources_dir() / "style.qss").read_text(encoding="utf-8")
    except OSError:
        return ""
