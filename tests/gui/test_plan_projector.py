"""The chat page's memory panel names the vision projector's share of the planned RAM / VRAM (a
row of its own) for a model with an mmproj beside it, and "none" for one without."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from tiny_vision_chat import build_gguf_pair  # noqa: E402


def test_the_projector_row(qtbot, tmp_path, starter_model):
    from quantdesk.app import formatting
    from quantdesk.app.pages.chat.plan_panel import PlanPanel
    from quantdesk.core.hardware import detect
    from quantdesk.core.runtime import LoadRequest, ModelManager
    text, _ = build_gguf_pair(tmp_path)
    panel = PlanPanel()
    qtbot.addWidget(panel)
    manager = ModelManager(hardware=lambda: detect().with_overrides(vram=0))
    try:
        plan = manager.resolve(LoadRequest(text, n_ctx=512)).plan
        panel.show_plan(plan)
        assert panel.text("Projector", "planned") == \
            f"{formatting.size(plan.memory.projector_ram)} RAM"
        manager = ModelManager(hardware=lambda: detect().with_overrides(vram=8 << 30))
        plan = manager.resolve(LoadRequest(text, n_ctx=512, gpu_layers=1)).plan
        panel.show_plan(plan)
        mem = plan.memory
        assert mem.projector_vram > 0
        assert panel.text("Projector", "planned") == (
            f"{formatting.size(mem.projector_vram)} VRAM + {formatting.size(mem.projector_ram)} RAM")
        panel.show_plan(manager.resolve(LoadRequest(starter_model, n_ctx=512)).plan)
        assert panel.text("Projector", "planned") == "none"
    finally:
        manager.shutdown()
