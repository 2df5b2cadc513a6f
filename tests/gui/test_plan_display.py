"""The chat page's memory panel: the planner's prediction before a load, the measured figures after
(one real load of the starter model, GPU layers "auto")."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_plan_before_load_and_measurement_after(window, qtbot, starter_model):
    from quantdesk.app import formatting
    from quantdesk.app.engine_worker import AUTO_GPU_LAYERS
    from quantdesk.core.hardware import nvidia_gpus
    from quantdesk.core.planner import plan_for_model

    chat = window.chat_page
    window.show_page("Chat")
    panel = chat.plan_panel
    chat.select_model(starter_model)
    chat.settings.n_ctx.setValue(1024)
    chat.settings.gpu_layers.setValue(AUTO_GPU_LAYERS)
    plan = plan_for_model(starter_model, n_ctx=1024, lower_ctx=False)

    # Before loading: the plan, computed in the background, and nothing measured yet.
    planned_ram = formatting.size(plan.memory.rss_bytes)
    qtbot.waitUntil(lambda: panel.text("RAM", "planned") == planned_ram, timeout=60000)
    assert panel.text("VRAM", "planned") == formatting.size(plan.vram_bytes)
    assert panel.text("GPU layers", "planned") == f"{plan.gpu_layers} of {plan.n_layer + 1}"
    assert panel.note.text() == plan.note
    assert panel.text("RAM", "measured") == "—"

    # A manual layer count is planned as such.
    chat.settings.gpu_layers.setValue(0)
    qtbot.waitUntil(lambda: panel.text("GPU layers", "planned").startswith("0"), timeout=60000)
    chat.settings.gpu_layers.setValue(AUTO_GPU_LAYERS)
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
