"""Locating the files in resources/ (icon, stylesheet) from the source tree or a frozen build."""
from __future__ import annotations

from pathlib import Path

from quantdesk.core.paths import resources_dir


def icon_path() -> Path:
    return resources_dir() / "quantdesk.svg"


def stylesheet() -> str:
    """The app stylesheet, or "" when the file is missing (the app still works, just plainer)."""
    try:
        return (resources_dir() / "style.qss").read_text(encoding="utf-8")
    except OSError:
        return ""
