"""The Library's Fit column: the planner's verdict for each model, computed off the GUI thread."""
from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


def fit_cell(window, path, role=Qt.ItemDataRole.DisplayRole):
    from quantdesk.app.pages.library.library_model import FIT_COLUMN
    model = window.library.model
    return model.index(model.row_of(path), FIT_COLUMN).data(role)


@pytest.mark.parametrize("vram, expected", [(8 << 30, "full-gpu"), (0, "cpu")])
def test_library_fit_column_is_the_planners_verdict(window, qtbot, starter_model, monkeypatch,
                                                    vram, expected):
    from quantdesk.app import fit
    from quantdesk.app.pages.library.library_model import COLUMNS
    from quantdesk.core.hardware import detect
    from quantdesk.core.planner import plan_for_model
    from quantdesk.core.runtime import LibrarySession

    threads = []
    real = LibrarySession.fit_verdicts

    def spy(*args, **kw):  # the real planner, noting which thread ran it
        threads.append(threading.current_thread())
        return real(*args, **kw)
    monkeypatch.setattr(LibrarySession, "fit_verdicts", spy)

    assert COLUMNS[-1] == "Fit"
    window.library.fit_overrides = {"vram": vram}  # a faked GPU (0: none)
    with qtbot.waitSignal(window.library.fits_ready, timeout=120000):
        window.library.refresh_fits()
    assert threads and threads[-1] is not threading.main_thread()

    plan = plan_for_model(starter_model, n_ctx=fit.BADGE_CTX, lower_ctx=False,
                          hardware=detect().with_overrides(vram=vram))
    assert plan.fit == expected  # a 135M model on 8 GiB runs fully on the GPU; no GPU: CPU
    assert fit_cell(window, starter_model) == fit.badge(plan)
    colour = fit_cell(window, starter_model, Qt.ItemDataRole.ForegroundRole)
    assert colour.name() == fit.FIT_COLOURS[expected]
    assert plan.note in fit_cell(window, starter_model, Qt.ItemDataRole.ToolTipRole)


def test_partial_badge_counts_layers(window, qtbot, starter_model):
    from quantdesk.app import fit
    from quantdesk.core.hardware import detect
    from quantdesk.core.planner import plan_for_model
    hw = detect()
    full = plan_for_model(starter_model, n_ctx=fit.BADGE_CTX, lower_ctx=False,
                          hardware=hw.with_overrides(vram=8 << 30))
    # A GPU that holds about half of what full offload needs (plus the planner's margin).
    vram = full.vram_bytes // 2 + (256 << 20)
    plan = plan_for_model(starter_model, n_ctx=fit.BADGE_CTX, lower_ctx=False,
                          hardware=hw.with_overrides(vram=vram))
    window.library.fit_overrides = {"vram": vram}
    with qtbot.waitSignal(window.library.fits_ready, timeout=120000):
        window.library.refresh_fits()
    assert plan.fit == "partial" and 0 < plan.gpu_layers < plan.n_layer
    assert fit_cell(window, starter_model) == f"partial {plan.gpu_layers}/{plan.n_layer + 1}"
