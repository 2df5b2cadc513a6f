"""Chat settings carry the K- and V-cache types, flash attention (with the quantized-V rule
enforced and said) and prompt lookup; the plan panel shows the context each KV type reaches for
the selected model."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_k_and_v_types_flash_attention_and_prompt_lookup_round_trip(qtbot):
    from quantdesk.app.pages.chat.chat_settings import ChatSettingsPanel
    from quantdesk.core.runtime.chat import load_request
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    values = panel.settings()
    assert (values["kv_type_k"], values["kv_type_v"], values["flash_attn"],
            values["prompt_lookup"]) == ("f16", "f16", "auto", 0)
    assert panel.kv.prompt_lookup.text() == "off"
    # K and V are chosen apart: a quantized K alone keeps flash attention "off" possible.
    with qtbot.waitSignal(panel.load_settings_changed):
        panel.kv.flash_attn.setCurrentIndex(panel.kv.flash_attn.findData("off"))
    with qtbot.waitSignal(panel.load_settings_changed):
        panel.kv.k_type.setCurrentIndex(panel.kv.k_type.findData("q8_0"))
    with qtbot.waitSignal(panel.load_settings_changed):
        panel.kv.prompt_lookup.setValue(10)
    values = panel.settings()
    assert (values["kv_type_k"], values["kv_type_v"], values["flash_attn"],
            values["prompt_lookup"]) == ("q8_0", "f16", "off", 10)
    assert panel.kv.rule.isHidden()
    request = load_request("/m.gguf", values)
    assert (request.kv_type_k, request.kv_type_v, request.prompt_lookup) == ("q8_0", "f16", 10)


def test_quantized_v_cache_turns_flash_attention_on_and_says_why(qtbot):
    from quantdesk.app.pages.chat.chat_settings import ChatSettingsPanel
    from quantdesk.core.runtime.chat import load_request
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    panel.kv.flash_attn.setCurrentIndex(panel.kv.flash_attn.findData("off"))
    with qtbot.waitSignal(panel.load_settings_changed):
        panel.kv.v_type.setCurrentIndex(panel.kv.v_type.findData("q4_0"))
    values = panel.settings()
    assert (values["kv_type_k"], values["kv_type_v"], values["flash_attn"]) == ("f16", "q4_0",
                                                                                "auto")
    off = panel.kv.flash_attn.findData("off")
    assert not panel.kv.flash_attn.model().item(off).isEnabled()
    assert not panel.kv.rule.isHidden()
    assert panel.kv.rule.text() == ("Flash attention set to auto: a quantized V cache (q4_0) "
                                    "needs flash attention, so “off” is not offered; keep V at "
                                    "f16 to turn it off.")
    assert load_request("/m.gguf", values).kv_type_v == "q4_0"   # always a loadable request
    panel.kv.v_type.setCurrentIndex(panel.kv.v_type.findData("q8_0"))   # "off" was not chosen
    assert panel.kv.rule.text().startswith("a quantized V cache (q8_0) needs flash attention")
    panel.kv.v_type.setCurrentIndex(panel.kv.v_type.findData("bf16"))
    assert panel.kv.rule.isHidden() and panel.kv.flash_attn.model().item(off).isEnabled()


def test_stored_settings_come_back_and_hand_edited_ones_become_loadable(qtbot):
    from quantdesk.app.pages.chat.chat_settings import ChatSettingsPanel
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    panel.set_settings({"kv_type_k": "q4_0", "kv_type_v": "q8_0", "flash_attn": "on",
                        "prompt_lookup": 5})
    got = panel.settings()
    assert (got["kv_type_k"], got["kv_type_v"], got["flash_attn"], got["prompt_lookup"]) == \
        ("q4_0", "q8_0", "on", 5)
    panel.set_settings({"kv_type_v": "q4_0", "flash_attn": "off"})   # refused pair
    assert panel.settings()["flash_attn"] == "auto"
    assert panel.kv.rule.text().startswith("Flash attention set to auto")
    panel.set_settings({"kv_type_k": "q3_k", "kv_type_v": "q8_0", "prompt_lookup": 999})
    got = panel.settings()
    assert (got["kv_type_k"], got["kv_type_v"], got["prompt_lookup"]) == ("f16", "q8_0", 0)
    panel.set_settings({})
    off = panel.kv.flash_attn.findData("off")
    assert panel.kv.flash_attn.model().item(off).isEnabled() and panel.kv.rule.isHidden()


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
    assert panel.kv_reach.text() == (f"f16: {by['f16'].n_ctx:,} ◂ · q8_0: 8,192 (max) · "
                                     f"q4_0: 8,192 (max)")
    assert "near-lossless" in panel.kv_reach.toolTip()
    assert panel.subject_settings.text() == ("context 2048 · GPU layers 0 (CPU only) · KV f16 · flash "
                                             "attention auto")
    # Another K/V choice re-plans: a type outside the table gets its row, marked as chosen.
    other = LoadRequest(starter_model, n_ctx=2048, gpu_layers=0, kv_type_k="q5_1",
                        kv_type_v="q5_1")
    preview.request(other)
    qtbot.waitUntil(lambda: "q5_1" in panel.kv_reach.text(), timeout=30000)
    assert panel.kv_reach.text().endswith("q5_1: 8,192 (max) ◂")
    assert panel.subject_settings.text().endswith("KV q5_1 · flash attention auto")
    assert preview.wait_idle()
    panel.show_subject(LoadRequest(starter_model, n_ctx=2048, gpu_layers=0, kv_type_k="q8_0",
                                   flash_attn="on", prompt_lookup=4))
    assert panel.subject_settings.text().endswith("K q8_0 · V f16 · flash attention on · "
                                                  "prompt lookup 4")
