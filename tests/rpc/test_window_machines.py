"""The window with a machine enabled in Settings: the chat's memory panel shows the split before
the load and llama.cpp's placement after it."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_chat_load_puts_layers_on_the_settings_machine(qtbot, tmp_path, monkeypatch,
                                                       starter_model, start_worker):
    worker = start_worker()
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    from quantdesk.core.settings import update_settings
    update_settings(machines=[{"endpoint": worker.endpoint, "enabled": True}])
    from quantdesk.app.main_window import MainWindow
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    chat = window.chat_page
    window.show_page("Chat")
    panel = chat.plan_panel
    chat.select_model(starter_model)
    chat.settings.n_ctx.setValue(1024)
    chat.settings.gpu_layers.set_layers("all")
    planned = f"Planned: {worker.endpoint} 31 layers ("
    qtbot.waitUntil(lambda: panel.split_planned.text().startswith(planned), timeout=60000)
    assert panel.text("GPU layers", "planned") == "31 of 31"
    with qtbot.waitSignal(chat.model_loaded, timeout=180000) as loaded:
        chat.load_button.click()
    assert loaded.args[0].n_gpu_layers == 31
    measured = f"Measured: {worker.endpoint} 31 layers ("
    qtbot.waitUntil(lambda: panel.split_measured.text().startswith(measured), timeout=10000)
    assert not panel.split_measured.isHidden()
