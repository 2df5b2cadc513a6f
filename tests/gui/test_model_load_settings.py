"""Library > "Load settings…": the window's door onto the per-model load settings
(core.runtime.model_settings). It writes what `quantdesk model-settings` writes, refuses what the
CLI refuses with the same one-line reason, Reset forgets the model's entry, and a chat with the
model loads with them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from PySide6.QtCore import Qt

from quantdesk.core.runtime.model_settings import FILE, ModelSettings

pytestmark = pytest.mark.gui


def cli(home, *args):
    """`quantdesk model-settings ARGS` in its own process over the data folder `home`."""
    env = {**os.environ, "QUANTDESK_HOME": str(home), "HF_HUB_CACHE": str(home / "hf"),
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "model-settings", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def open_dialog(window, starter_model, via_menu=False):
    page = window.library_page
    assert page.select_path(starter_model)
    if via_menu:
        actions = {a.text(): a for a in page.context_menu().actions() if a.text()}
        actions["Load settings…"].trigger()
    else:
        page.load_settings_button.click()
    dialog = page.settings_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def choose(box, value) -> None:
    box.setCurrentIndex(box.findData(value))


def test_the_dialog_writes_what_the_cli_writes_and_shows_it_again(
        window, qtbot, home, starter_model, tmp_path, monkeypatch):
    by_cli = cli(tmp_path / "cli-home", str(starter_model), "--ctx", "1024", "--gpu-layers",
                 "8", "--kv-type", "q8_0", "--flash-attn", "on")
    assert by_cli.returncode == 0, by_cli.stderr
    planned_on = []   # the threads the dialog's plan line was planned on
    resolve = window.models.resolve
    monkeypatch.setattr(window.models, "resolve", lambda request: planned_on.append(
        threading.current_thread()) or resolve(request))

    dialog = open_dialog(window, starter_model)
    assert (dialog.n_ctx.text(), dialog.gpu_layers.text()) == ("", "")   # nothing stored yet
    assert dialog.kv_type_k.currentText() == "default" and not dialog.reset_button.isEnabled()
    qtbot.keyClicks(dialog.n_ctx, "1024")
    qtbot.keyClicks(dialog.gpu_layers, "8")
    choose(dialog.kv_type_k, "q8_0")
    choose(dialog.kv_type_v, "q8_0")
    choose(dialog.flash_attn, "on")
    assert dialog.save_button.isEnabled()
    # The plan line is the planner's for these values, planned off the GUI thread.
    qtbot.waitUntil(lambda: "at context 1,024" in dialog.plan.text(), timeout=20000)
    assert planned_on and threading.main_thread() not in planned_on
    with qtbot.waitSignal(window.library_page.load_settings_saved) as saved:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert saved.args == [str(starter_model), {"n_ctx": 1024, "n_gpu_layers": 8,
                                                "kv_type_k": "q8_0", "kv_type_v": "q8_0",
                                                "flash_attn": "on"}]
    assert (home / FILE).read_bytes() == (tmp_path / "cli-home" / FILE).read_bytes()

    # Opened again (right-click this time), it shows what is stored.
    again = open_dialog(window, starter_model, via_menu=True)
    assert (again.n_ctx.text(), again.gpu_layers.text()) == ("1024", "8")
    assert [b.currentData() for b in (again.kv_type_k, again.kv_type_v, again.flash_attn)] == [
        "q8_0", "q8_0", "on"]
    assert again.reset_button.isEnabled()
    again.reject()


@pytest.mark.parametrize("field, value, cli_args", [
    ("n_ctx", "0", ["--ctx", "0"]),
    ("gpu_layers", "many", ["--gpu-layers", "many"]),
    ("pair", ("q4_0", "off"), ["--kv-type", "f16,q4_0", "--flash-attn", "off"]),
])
def test_an_invalid_value_shows_its_reason_and_save_stays_disabled(
        window, qtbot, home, starter_model, tmp_path, field, value, cli_args):
    dialog = open_dialog(window, starter_model)
    if field == "pair":
        choose(dialog.kv_type_v, value[0])
        choose(dialog.flash_attn, value[1])
    else:
        qtbot.keyClicks(getattr(dialog, field), value)
    reason = dialog.problem.text()
    assert dialog.problem.isVisible() and "\n" not in reason and reason
    assert not dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)   # disabled: nothing happens
    assert dialog.isVisible() and not (home / FILE).exists()

    by_cli = cli(tmp_path / "cli-home", str(starter_model), *cli_args)
    assert by_cli.returncode == 2 and "Traceback" not in by_cli.stderr
    assert reason.rstrip(".").lower() in by_cli.stderr.lower()   # the same rule, same words
    # Fixing the value enables Save and hides the reason.
    if field == "pair":
        choose(dialog.flash_attn, "auto")
    else:
        getattr(dialog, field).setText("512" if field == "n_ctx" else "auto")
    assert dialog.save_button.isEnabled() and not dialog.problem.isVisible()
    dialog.reject()


def test_reset_removes_the_models_entry_only(window, qtbot, home, starter_model, model_copy):
    ModelSettings(home).update(starter_model, n_ctx=700, flash_attn="off")
    ModelSettings(home).update(model_copy, n_ctx=900)
    dialog = open_dialog(window, starter_model)
    assert dialog.n_ctx.text() == "700" and dialog.flash_attn.currentData() == "off"
    with qtbot.waitSignal(dialog.saved) as saved:
        qtbot.mouseClick(dialog.reset_button, Qt.MouseButton.LeftButton)
    assert saved.args == [str(starter_model), {}]
    stored = json.loads((home / FILE).read_text())
    assert list(stored) == [os.path.normcase(os.path.abspath(model_copy))]
    assert dialog.n_ctx.text() == "" and dialog.flash_attn.currentData() is None
    assert not dialog.reset_button.isEnabled()
    dialog.reject()


def test_a_chat_switched_to_a_model_takes_its_stored_settings(home, starter_model, model_copy):
    from quantdesk.core.chatstore import ChatStore
    from quantdesk.core.runtime.chat import ChatSession
    ModelSettings(home).update(starter_model, n_ctx=1024, n_gpu_layers=0)
    with ChatStore() as store:
        session = ChatSession(store, models=None)
        cid = session.new_conversation(model_path=model_copy, settings={"n_ctx": 3000})
        assert store.get_conversation(cid).settings["n_ctx"] == 3000   # nothing stored for it
        session.switch_model(starter_model)
        settings = store.get_conversation(cid).settings
        assert (settings["n_ctx"], settings["n_gpu_layers"]) == (1024, 0)
        assert session._load_request().n_ctx == 1024


@pytest.mark.slow
def test_a_chat_with_the_model_loads_with_its_saved_context(window, qtbot, home, starter_model):
    window.show_page("Chat")
    chat = window.chat_page
    chat.settings.n_ctx.setValue(2048)   # what a new chat would carry over from the panel
    window.show_page("Library")
    dialog = open_dialog(window, starter_model)
    qtbot.keyClicks(dialog.n_ctx, "1024")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    with qtbot.waitSignal(chat.model_loaded, timeout=180000) as loaded:
        window.library_page.chat_button.click()   # "Chat with this": a new chat, loading now
    assert loaded.args[0].n_ctx == 1024
    assert chat.settings.n_ctx.value() == 1024
    assert chat.session.conversation().settings["n_ctx"] == 1024

    # Saved again while this chat (with that model) is shown: the chat takes them for its next
    # load and says so; a reset changes nothing in it.
    dialog = open_dialog(window, starter_model)
    dialog.n_ctx.setText("512")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert chat.settings.n_ctx.value() == 512
    assert chat.session.conversation().settings["n_ctx"] == 512
    assert "load settings saved for" in chat.status.text()
    assert chat.load_request().n_ctx == 512
    dialog = open_dialog(window, starter_model)
    qtbot.mouseClick(dialog.reset_button, Qt.MouseButton.LeftButton)
    assert chat.settings.n_ctx.value() == 512
