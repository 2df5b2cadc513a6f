"""Where Quantdesk keeps its files. `QUANTDESK_HOME` overrides the per-user folder (tests use it)."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """resources/ beside app/ and core/ in a checkout or editable install; under sys._MEIPASS
    in a frozen (PyInstaller) build, which bundles the folder there."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def data_dir() -> Path:
    """Per-user data folder (chat history, library list, settings), created on demand."""
    override = os.environ.get("QUANTDESK_HOME")
    if override:
        path = Path(override)
    else:
        from platformdirs import user_data_dir
        path = Path(user_data_dir("Quantdesk", "Quantdesk"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_models_dir() -> Path:
    return data_dir() / "models"


def models_dir() -> Path:
    """Where models Quantdesk makes itself (quantized, converted) are written: the Settings
    page's models folder, else <data folder>/models."""
    from quantdesk.core.settings import load_settings   # a small JSON file, read each time
    chosen = load_settings().models_dir
    path = Path(chosen).expanduser() if chosen else default_models_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path
