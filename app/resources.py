"""Locating the files in resources/ (icon, stylesheet) from the source tree or a frozen build."""
from __future__ import annotations

from pathlib import Path

from quantdesk.core.paths import resources_dir


def icon_path() -> Path:
    return resources_dir() / "quantdesk.svg"


def stylesheet(dark: bool = False) -> str:
    """The app stylesheet (style.qss, plus style-dark.qss's overrides for the dark theme), or ""
    when the file is missing (the app still works, just plainer)."""
    names = ("style.qss", "style-dark.qss") if dark else ("style.qss",)
    parts = []
    for name in names:
        try:
            parts.append((resources_dir() / name).read_text(encoding="utf-8"))
        except OSError:
            pass
    return "\n".join(parts)
