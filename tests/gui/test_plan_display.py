"""The chat page's memory panel: the planner's prediction before a load, the measured figures after
(one real load of the starter model, GPU layers "auto")."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_plan_before_load_and_measurement_after(window, qtbot, starter_model):
    from quantdesk.app import formatting
    from quantdesk.core.hardware import nvidia_gpus
    from quantdesk.core.runtime import LoadRequest

    chat = window.chat_page
    window.show_page("Chat")
    panel = chat.plan_panel
    chat.select_model(starter_model)
    chat.settings.n_ctx.setValue(1024)
    chat.settings.gpu_layers.set_layers("auto")
    plan = window.models.resolve(LoadRequest(starter_model, n_ctx=1024)).plan

    # Before loading: the plan, computed in the background, and nothing measured yet.
    planned_ram = formatting.size(plan.memory.rss_bytes)
    qtbot.waitUntil(lambda: panel.text("RAM", "planned") == planned_ram, timeout=60000)
    assert panel.text("VRAM", "planned") == formatting.size(plan.vram_bytes)
    assert panel.text("GPU layers", "planned") == f"{plan.gpu_layers} of {plan.n_layer + 1}"
    assert panel.note.text() == plan.note
    assert panel.text("RAM", "measured") == "—"

    # A manual layer count is planned as such.
    chat.settings.gpu_layers.set_layers(0)
    qtbot.waitUntil(lambda: panel.text("GPU layers", "planned").startswith("0"), timeout=60000)
    chat.settings.gpu_layers.set_layers("auto")
    qtbot.waitUntil(lambda: panel.text("RAM", "planned") == planned_ram, timeout=60000)

    # After loading: the measured figures beside the planned ones.
    with qtbot.waitSignal(chat.model_loaded, timeout=180000) as loaded:
        chat.load_button.click()
    result = loaded.args[0]
    growth = result.rss_after - result.rss_before
    assert growth > 0
    qtbot.waitUntil(lambda: panel.text("RAM", "measured") != "loading…", timeout=10000)
    assert panel.text("RAM", "measured").startswith(formatting.size(growth))
    assert panel.text("RAM", "planned") == planned_ram  # still shown, side by side
    assert panel.text("GPU layers", "measured") == str(result.n_gpu_layers)
    vram = panel.text("VRAM", "measured")
    assert vram == "no NVIDIA GPU" if not nvidia_gpus() else vram[0].isdigit()
    print(f"starter n_ctx 1024: planned RSS growth {planned_ram}, measured "
          f"{panel.text('RAM', 'measured')}")


@pytest.mark.slow
def test_window_and_cli_give_the_same_plan(window, qtbot, starter_model):
    """`quantdesk chat --json` reports what the model manager resolved; the chat page's plan
    panel shows the same GPU layers, context and verdict for the same model and settings."""
    import json
    import os
    import subprocess
    import sys
    out = subprocess.run(
        [sys.executable, "-m", "quantdesk.core.cli", "chat", str(starter_model), "--prompt", "Hi",
         "--max-tokens", "2", "--ctx", "1536", "--gpu-layers", "auto", "--threads", "1",
         "--json"], capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)["plan"]

    chat = window.chat_page
    window.show_page("Chat")
    chat.select_model(starter_model)
    chat.settings.n_ctx.setValue(1536)
    chat.settings.gpu_layers.set_layers("auto")
    panel = chat.plan_panel
    expected = f"{cli['planned_gpu_layers']} of {cli['n_layer'] + 1}"
    qtbot.waitUntil(lambda: panel.plan is not None and panel.plan.n_ctx == 1536, timeout=60000)
    assert panel.text("GPU layers", "planned") == expected
    assert cli["gpu_layers"] == panel.plan.gpu_layers and cli["n_ctx"] == panel.plan.n_ctx
    assert cli["fit"] == panel.plan.fit and panel.note.text() == cli["plan_note"]
    assert f"at context {cli['n_ctx']}" in panel.fit_label.text()
