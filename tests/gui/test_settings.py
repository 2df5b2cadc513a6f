"""Settings: the core settings file (schema, atomic write, unreadable file set aside), the
Settings page (folders, new-chat defaults, live theme), shortcuts, Help menu, right-click menus."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QDesktopServices, QPalette
from PySide6.QtWidgets import QApplication

pytestmark = pytest.mark.gui


# ---- core.settings ---------------------------------------------------------------------------

def test_settings_round_trip_atomically(home):
    from quantdesk.core.settings import SCHEMA, load_settings, update_settings
    assert load_settings().theme == "system" and load_settings().n_gpu_layers is None
    assert load_settings().chat_defaults() == {}   # nothing chosen: the chats' own values stand
    update_settings(theme="dark", n_threads=6, n_ctx=8192, n_gpu_layers="all")
    saved = json.loads((home / "settings.json").read_text())
    assert saved["schema"] == SCHEMA and saved["theme"] == "dark" and saved["n_threads"] == 6
    assert not list(home.glob("*.tmp"))
    s = load_settings()
    assert (s.theme, s.n_threads, s.n_ctx, s.n_gpu_layers) == ("dark", 6, 8192, "all")
    assert s.chat_defaults() == {"n_ctx": 8192, "n_gpu_layers": "all", "n_threads": 6}
    with pytest.raises(KeyError):
        update_settings(hf_token="hf_x")   # the token is huggingface_hub's to keep, not ours


def test_bad_values_fall_back_one_by_one(home):
    from quantdesk.core.settings import load_settings
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(json.dumps(
        {"schema": 99, "theme": "purple", "n_threads": -3, "n_ctx": 8192, "n_gpu_layers": "most",
         "future_key": 1}))
    s = load_settings()
    assert (s.theme, s.n_threads, s.n_ctx, s.n_gpu_layers) == ("system", None, 8192, None)
    assert s.warning is None


def test_an_unreadable_settings_file_is_set_aside_and_reported_once(home, qtbot):
    from quantdesk.core.settings import load_settings, pop_warnings
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text("{half a file")
    s = load_settings()
    assert s.theme == "system" and "settings.json could not be read" in s.warning
    assert (home / "settings.json.unreadable").read_text() == "{half a file"
    assert not (home / "settings.json").exists()
    from quantdesk.app.main_window import MainWindow   # the window shows what was set aside
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    assert "settings.json.unreadable" in win.banner.text()
    assert pop_warnings() == []


def test_models_folder_setting_is_where_models_go(home, tmp_path):
    from quantdesk.core import paths
    from quantdesk.core.settings import update_settings
    assert paths.models_dir() == home / "models"
    update_settings(models_dir=str(tmp_path / "elsewhere"))
    assert paths.models_dir() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()


# ---- the Settings page -------------------------------------------------------------------------

def test_ctrl_comma_opens_settings_and_theme_applies_live(window, qtbot, home):
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() == "Settings"
    page = window.settings_page
    app = QApplication.instance()
    page.set_theme("dark")
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert "#141925" in app.styleSheet()   # the dark sidebar of style-dark.qss
    assert json.loads((home / "settings.json").read_text())["theme"] == "dark"
    page.theme_box.setCurrentIndex(page.theme_box.findData("light"))   # as a user picks it
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    assert "#141925" not in app.styleSheet() and "#22304a" in app.styleSheet()
    page.set_theme("dark")
    page.set_theme("system")   # offscreen has no platform theme: its scheme is Unknown -> light
    assert app.styleHints().colorScheme() == Qt.ColorScheme.Unknown
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    assert json.loads((home / "settings.json").read_text())["theme"] == "system"



def test_chat_transcript_and_model_card_follow_the_theme(window, qtbot):
    """Their colours are in their HTML: light bubbles behind the dark theme's light text were
    unreadable (seen in the screenshot tour). A theme change draws them again."""
    from quantdesk.app.markdown_view import COLOURS
    from quantdesk.app.pages.discover.discover_page import CardBrowser
    chat = window.chat_page
    cid = chat.new_conversation()
    chat.store.add_message(cid, "user", "Hello there")
    chat.store.add_message(cid, "assistant", "Hi! `x = 1`\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    chat.select_conversation(cid)
    window.show_page("Chat")
    card = CardBrowser()
    qtbot.addWidget(card)
    card.show()   # as on the Discover page
    card.show_markdown("| a | b |\n|---|---|\n| 1 | 2 |")
    page = window.settings_page

    def shown(view) -> str:
        return view.toHtml().lower()
    try:
        page.set_theme("dark")
        text = QApplication.instance().palette().color(QPalette.ColorRole.Text)
        for role in ("user", "assistant"):
            bubble = QColor(COLOURS[True][role])
            assert f'bgcolor="{bubble.name()}"' in shown(chat.view)
            assert text.lightness() - bubble.lightness() > 100   # light text on a dark bubble
        assert COLOURS[False]["user"] not in shown(chat.view)
        assert COLOURS[True]["border"] in shown(card)
        page.set_theme("light")
        assert f'bgcolor="{COLOURS[False]["user"]}"' in shown(chat.view)
        assert COLOURS[True]["user"] not in shown(chat.view)
        assert COLOURS[False]["border"] in shown(card)
    finally:
        page.set_theme("system")

def test_new_chats_start_with_the_default_load_settings(window, qtbot, home):
    page = window.settings_page
    page.threads.setValue(3)
    page.n_ctx.setValue(1024)
    page.gpu_layers.set_layers(0)
    chat = window.chat_page
    cid = chat.new_conversation()
    settings = chat.store.get_conversation(cid).settings
    assert (settings["n_ctx"], settings["n_gpu_layers"], settings["n_threads"]) == (1024, 0, 3)
    assert (chat.settings.n_ctx.value(), chat.settings.gpu_layers.layers()) == (1024, 0)
    chat.select_model(window.library.model.entries()[0].info.path)
    chat._save_conversation_settings()   # the side panel keeps what it has no control for
    request = chat.load_request()
    assert (request.n_ctx, request.n_threads) == (1024, 3)


def test_open_folder_buttons(window, qtbot, home, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    page = window.settings_page
    page.data_open.click()
    page.models_open.click()
    assert opened == [str(home), str(home / "models")]


# ---- shortcuts, Help, menus --------------------------------------------------------------------

def test_ctrl_digits_switch_pages_and_ctrl_n_starts_a_chat(window, qtbot):
    window.activateWindow()
    for i, name in enumerate(("Library", "Discover", "Quantize", "Quality", "Chat", "Server",
                              "Settings"), 1):
        qtbot.keyClick(window, getattr(Qt.Key, f"Key_{i}"), Qt.KeyboardModifier.ControlModifier)
        assert window.current_page() == name
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page() == "Chat"
    before = len(window.chat_page.store.list_conversations())
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert len(window.chat_page.store.list_conversations()) == before + 1
    assert window.chat_page.current_conversation_id() == window.chat_page.store.list_conversations()[0].id


def test_esc_in_the_chat_stops_the_reply(window, qtbot, monkeypatch):
    window.show_page("Chat")
    chat = window.chat_page
    calls = []
    monkeypatch.setattr(chat, "stop", lambda: calls.append("stop"))
    monkeypatch.setattr(chat, "cancel_edit", lambda: calls.append("cancel_edit"))
    monkeypatch.setattr(chat, "is_busy", lambda: True)
    window.activateWindow()
    chat.composer.setFocus()
    qtbot.keyClick(chat.composer, Qt.Key.Key_Escape)
    monkeypatch.setattr(chat, "is_busy", lambda: False)
    qtbot.keyClick(chat.composer, Qt.Key.Key_Escape)
    assert calls == ["stop", "cancel_edit"]


def test_f1_lists_the_shortcuts(window, qtbot):
    from quantdesk.app.help_dialogs import ShortcutsDialog
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F1)
    dialog = window.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()
    keys = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    for expected in ("Ctrl+N", "Ctrl+1", "Ctrl+6", "Ctrl+,", "F1", "Esc"):
        assert expected in keys
    dialog.reject()


def test_about_shows_our_versions_and_the_llama_cpp_build(window, qtbot):
    import subprocess
    import sys
    from quantdesk.app.help_dialogs import AboutDialog
    window.about_action.trigger()
    dialog = window.findChild(AboutDialog)
    assert dialog is not None
    for key in ("Quantdesk", "Python", "PySide6 / Qt", "llama-cpp-python", "llama.cpp GPU backend"):
        assert key in dialog.versions
    qtbot.waitUntil(lambda: "llama.cpp build" in dialog.versions, timeout=60000)
    assert "AVX" in dialog.versions["llama.cpp build"] or "CPU" in dialog.versions["llama.cpp build"]
    assert dialog.versions["llama-cpp-python"][0].isdigit()
    dialog.reject()
    # The build line is asked in a child process: the window's process never loads llama.cpp
    # (checked in a fresh interpreter; this test process may have loaded it for other tests).
    probe = ("import sys; from quantdesk.core.versions import versions; v = versions(); "
             "assert 'llama.cpp build' in v, v; assert 'llama_cpp' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_conversation_context_menu_renames_and_deletes(window, qtbot, monkeypatch):
    from quantdesk.app.context_menus import conversation_menu
    chat = window.chat_page
    cid = chat.new_conversation()
    actions = {a.text(): a for a in conversation_menu(chat).actions()}
    assert list(actions) == ["Rename", "Delete…"]
    assert chat.conversation_view.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
    actions["Rename"].trigger()
    assert chat.conversation_view.state() == chat.conversation_view.State.EditingState
    monkeypatch.setattr(chat, "ask_confirmation", lambda text: True)
    actions["Delete…"].trigger()
    assert cid not in [c.id for c in chat.store.list_conversations()]
