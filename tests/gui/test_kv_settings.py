"""Chat settings carry the KV-cache type and flash attention; the plan panel shows the context
each KV type reaches for the selected model."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_kv_type_and_flash_attention_round_trip_and_off_is_not_offered_when_quantized(qtbot):
    from quantdesk.app.pages.chat.chat_settings import ChatSettingsPanel
    from quantdesk.core.runtime.chat import load_request
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    values = panel.settings()
    assert (values["kv_type_k"], values["kv_type_v"], values["flash_attn"]) == ("f16", "f16",
                                                                                "auto")
    with qtbot.waitSignal(panel.load_settings_changed):
        panel.kv.flash_attn.setCurrentIndex(panel.kv.flash_attn.findData("off"))
    with qtbot.waitSignal(panel.load_settings_changed):
        panel.kv.kv_type.setCurrentIndex(panel.kv.kv_type.findData("q8_0"))
    # A quantized V cache needs flash attention: "off" went back to auto and is not offered.
    values = panel.settings()
    assert (values["kv_type_v"], values["flash_attn"]) == ("q8_0", "auto")
    off = panel.kv.flash_attn.findData("off")
    assert not panel.kv.flash_attn.model().item(off).isEnabled()
    assert load_request("/m.gguf", values).kv_type_v == "q8_0"   # always a loadable request
    # A stored conversation's settings come back; a refused hand-edited pair is made loadable.
    panel.set_settings({"kv_type_k": "q4_0", "kv_type_v": "q4_0", "flash_attn": "on"})
    assert panel.settings()["kv_type_k"] == "q4_0" and panel.settings()["flash_attn"] == "on"
    panel.set_settings({"kv_type_v": "q4_0", "flash_attn": "off"})
    assert panel.settings()["flash_attn"] == "auto"
    panel.set_settings({"kv_type_v": "q3_k"})
    assert panel.settings()["kv_type_v"] == "f16"
    panel.set_settings({})
    assert panel.kv.flash_attn.model().item(off).isEnabled()


def test_plan_panel_shows_context_reachable_per_kv_type(qtbot, starter_model):
    from quantdesk.app.pages.chat.plan_panel import PlanPanel, PlanPreview
    from quantdesk.core.hardware import detect
    from quantdesk.core.runtime import LoadRequest, ModelManager
    MiB = 1 << 20
    # Tight RAM: 1 GiB free less the planner's 512 MiB margin; f16 stops short of 8192.
    models = ModelManager(hardware=lambda: detect().with_overrides(vram=0, ram=780 * MiB))
    panel = PlanPanel()
    qtbot.addWidget(panel)
    preview = PlanPreview(panel, models)
    request = LoadRequest(starter_model, n_ctx=2048, gpu_layers=0)
    rows = models.context_by_kv_type(request)
    preview.request(request)
    qtbot.waitUntil(lambda: panel.kv_reach.text() not in ("—", "…"), timeout=30000)
    by = {r.kv_type: r for r in rows}
    assert 2048 < by["f16"].n_ctx < 8192 == by["q8_0"].n_ctx == by["q4_0"].n_ctx
    assert panel.kv_reach.text() == (f"f16: {by['f16'].n_ctx:,} · q8_0: 8,192 (max) · "
                                     f"q4_0: 8,192 (max)")
    assert "near-lossless" in panel.kv_reach.toolTip()
    assert preview.wait_idle()
