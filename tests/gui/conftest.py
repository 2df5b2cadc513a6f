"""GUI test fixtures: a main window over a throw-away data folder (never the user's)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # no scan of a real cache
    return tmp_path / "home"


@pytest.fixture
def window(qtbot, home):
    """The main window, shown, with its first library refresh done (the starter model listed)."""
    from quantdesk.app.main_window import MainWindow
    win = MainWindow()
    qtbot.addWidget(win)  # closed at teardown: closeEvent ends the engine host
    win.show()
    qtbot.waitUntil(lambda: win.library.model.rowCount() > 0)
    return win


@pytest.fixture(scope="session")
def model_copy(starter_model, tmp_path_factory) -> Path:
    """A copy of the starter model under another name: opening it adds a new library entry."""
    path = tmp_path_factory.mktemp("models") / "my-smollm.gguf"
    shutil.copyfile(starter_model, path)
    return path


@pytest.fixture
def not_gguf(tmp_path) -> Path:
    path = tmp_path / "notes.gguf"
    path.write_text("these are my notes, not a model\n" * 20)
    return path


@pytest.fixture
def truncated(starter_model, tmp_path) -> Path:
    path = tmp_path / "half-download.gguf"
    with open(starter_model, "rb") as src:
        path.write_bytes(src.read(4 * 1024 * 1024))
    return path
