"""The main window: pages, and opening GGUF files by File > Open's path, drag-and-drop, startup."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog

pytestmark = pytest.mark.gui


def library_paths(win) -> set[str]:
    return {str(e.path) for e in win.library.model.entries()}


def persisted_paths() -> set[str]:
    """What a fresh Library (as after a restart) lists."""
    from quantdesk.core.library import Library
    return {str(e.path) for e in Library().entries()}


def test_window_has_the_six_pages(window, qtbot):
    sidebar = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]
    assert sidebar == ["Library", "Discover", "Quantize", "Quality", "Chat", "Settings"]
    for row, page in enumerate((window.library_page, window.discover_page,
                                window.quantize_page, window.quality_page, window.chat_holder,
                                window.settings_holder)):
        window.sidebar.setCurrentRow(row)
        assert window.stack.currentWidget() is page
    assert window.chat_holder.page is window.chat_page  # built when first shown
    assert window.library.model.entries()[0].source == "starter"
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Help"]
    menu = [a.text() for a in window.menuBar().actions()[0].menu().actions() if a.text()]
    assert menu == ["&New chat", "&Open GGUF…", "&Settings…", "&Quit"]
    help_menu = [a.text() for a in window.menuBar().actions()[1].menu().actions() if a.text()]
    assert help_menu == ["&Keyboard shortcuts", "&About Quantdesk"]


@pytest.mark.parametrize("bad", ["not_gguf", "truncated"])
def test_opening_a_bad_file_shows_why_and_changes_nothing(window, qtbot, request, monkeypatch,
                                                          bad):
    path = request.getfixturevalue(bad)
    before = library_paths(window)
    # File > Open, with the dialog answered as a user picking the file would.
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(path)], ""))
    with qtbot.waitSignal(window.library.open_failed, timeout=20000) as blocker:
        window.open_action.trigger()
    failed_path, message = blocker.args
    assert failed_path == str(path)
    assert path.name in message and "\n" not in message
    assert window.banner.isVisible() and message in window.banner.text()
    assert library_paths(window) == before
    assert str(path) not in persisted_paths()
    assert path.read_bytes()[:4] != b""  # the file itself is untouched


def test_opening_a_valid_file_adds_it_and_shows_its_metadata(window, qtbot, model_copy):
    with qtbot.waitSignal(window.library.opened, timeout=20000) as blocker:
        window.open_paths([model_copy])
    info = blocker.args[0]
    assert (info.architecture, info.file_type, info.block_count) == ("llama", "Q4_1", 30)
    assert str(model_copy) in library_paths(window)
    assert str(model_copy) in persisted_paths()
    assert window.current_page() == "Library"
    details = window.library_page.details.text()
    for expected in ("llama", "Q4_1", "30", "8,192", "Chat template", "yes", "135M"):
        assert expected in details
    assert not window.banner.isVisible()
    assert "Added" in window.statusBar().currentMessage()


def _drop(win, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(400, 300), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(400, 300), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, drop)
    return drop


def test_drag_and_drop_adds_good_files_and_reports_bad_ones(window, qtbot, model_copy, not_gguf):
    failures = []
    window.library.open_failed.connect(lambda p, m: failures.append(p))
    with qtbot.waitSignal(window.library.opened, timeout=20000) as blocker:
        drop = _drop(window, [model_copy, not_gguf])
    assert drop.isAccepted()
    assert Path(blocker.args[0].path) == model_copy
    assert str(model_copy) in persisted_paths()
    assert failures == [str(not_gguf)]  # emitted in the same batch, before we got here
    assert not_gguf.name in window.banner.text()


def test_remove_forgets_the_model_but_keeps_the_file(window, qtbot, model_copy):
    with qtbot.waitSignal(window.library.opened, timeout=20000):
        window.open_paths([model_copy])
    assert window.library_page.select_path(model_copy)
    asked = []
    window.library_page.ask_remove = lambda entry, plan: asked.append(plan) or "forget"
    with qtbot.waitSignal(window.library.refreshed, timeout=20000):
        window.library_page.remove_button.click()
    # The copy lives outside Quantdesk's models folder: deleting it would need the user's yes.
    assert asked[0].where == "elsewhere" and asked[0].needs_confirmation
    assert str(model_copy) not in library_paths(window)
    assert model_copy.is_file()


def test_startup_shows_the_window_without_heavy_imports(home):
    # With a chat history to show, Markdown rendering must still wait until the Chat page opens.
    from quantdesk.core.chatstore import ChatStore
    with ChatStore() as store:
        cid = store.create_conversation(title="Earlier").id
        store.add_message(cid, "user", "Show me code")
        store.add_message(cid, "assistant", "```python\nprint('hi')\n```")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QUANTDESK_STARTUP_PROBE="1",
               QUANTDESK_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "quantdesk.app.main"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("startup:"))
    assert "visible=True" in line and "heavy modules loaded: none" in line
    print(line)  # the time is reported, not asserted (no timed asserts)


def test_paths_on_the_command_line_are_opened(home, model_copy):
    """`quantdesk-gui MODEL.gguf` (what the OS file association runs) opens and adds the file.

    Run as the OS would, in its own process: an in-process app.exec()/quit() would leave the
    shared test QApplication refusing to run event loops for the tests after it.
    """
    import time
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "quantdesk.app.main", str(model_copy)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while str(model_copy) not in persisted_paths():
            assert proc.poll() is None, f"the app exited early: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the file given on the command line was not added"
            time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_unreadable_chat_history_is_reported_and_left_untouched(home, qtbot):
    home.mkdir(parents=True, exist_ok=True)
    history = home / "chats.sqlite3"
    garbage = b"not a database, but the user's file all the same\n" * 100
    history.write_bytes(garbage)
    from quantdesk.app.main_window import MainWindow
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.show_page("Chat")  # the chat store is opened with the Chat page
    assert "chats.sqlite3" in win.banner.text() and "not be saved" in win.banner.text()
    cid = win.chat_page.new_conversation()  # chatting still works, in memory
    assert [c.id for c in win.chat_page.store.list_conversations()] == [cid]
    assert history.read_bytes() == garbage


def test_self_test_flag_reaches_the_smoke_test(home, tmp_path, capsys):
    from quantdesk.app.main import main
    missing = tmp_path / "gone.gguf"
    assert main(["--self-test", str(missing)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"quantdesk self-test failed: {missing}: no such file"
