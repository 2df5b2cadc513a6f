"""The quality report page renders reports: table rows, Pareto marks, chart exported as PNG."""
from __future__ import annotations

import numpy as np
import pytest

from quantdesk.core.evaluate import QualityReport


def _r(ft: str, size: int, kld: float) -> QualityReport:
    return QualityReport(model=f"/m/x-{ft}.gguf", reference="/m/x-F32.gguf", file_type=ft,
                         size_bytes=size, bits_per_weight=size * 8 / 1.3e8, ppl=24.0,
                         ref_ppl=23.5, kld_mean=kld, kld_median=kld, kld_p99=kld * 4,
                         kld_max=kld * 8, top1_agreement=0.9, tokens=252, chunks=4, n_ctx=128,
                         seconds=1.0)


@pytest.mark.gui
def test_page_shows_reports_and_exports_png(qtbot, tmp_path):
    from PySide6.QtGui import QImage

    from quantdesk.app.pages.quality import QualityReportPage
    page = QualityReportPage()
    qtbot.addWidget(page)
    page.resize(900, 700)
    page.show()
    page.set_reports([_r("Q8_0", 145_000_000, 0.001), _r("Q4_0", 110_000_000, 0.05),
                      _r("Q4_K_M", 105_000_000, 0.02)])
    table = page.table.model()
    assert table.rowCount() == 3
    types = [table.index(i, 0).data() for i in range(3)]
    assert types == ["Q8_0 ★", "Q4_0", "Q4_K_M ★"]          # Q4_0 is dominated by Q4_K_M
    assert page.csv_button.isEnabled() and page.png_button.isEnabled()
    out = tmp_path / "chart.png"
    assert page.export_png(str(out))
    img = QImage(str(out))
    assert not img.isNull() and img.width() > 300
    img = img.convertToFormat(QImage.Format_RGB888)
    pixels = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes())
    rows = pixels.reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    rgb = rows.reshape(img.height(), img.width(), 3)
    accent = np.all(rgb == (0xD9, 0x82, 0x2B), axis=2)
    assert accent.sum() > 50                                 # the Pareto front was drawn


@pytest.mark.gui
def test_start_without_models_says_what_is_missing(qtbot):
    from quantdesk.app.pages.quality import QualityReportPage
    page = QualityReportPage()
    qtbot.addWidget(page)
    page.start()
    assert "reference" in page.status.text() and page.run_button.isEnabled()


@pytest.mark.gui
def test_reference_and_models_are_set_from_outside_once_each(qtbot):
    from quantdesk.app.pages.quality import QualityReportPage
    page = QualityReportPage()
    qtbot.addWidget(page)
    page.set_reference("/m/x-F16.gguf")
    page.add_model("/m/x-Q4_K_M.gguf")
    page.add_model("/m/x-Q4_K_M.gguf")       # the Quantize page may ask twice
    assert page.reference.text() == "/m/x-F16.gguf"
    assert page.model_paths() == ["/m/x-Q4_K_M.gguf"]


@pytest.fixture
def ready_page(qtbot, tmp_path, monkeypatch):
    """A page with a reference and two quants chosen, scoring a small text of the user's."""
    from quantdesk.app.pages.quality import QualityReportPage
    text = tmp_path / "mine.txt"
    text.write_text("some text of the user's own\n" * 50)
    page = QualityReportPage()
    qtbot.addWidget(page)
    page.set_reference("/m/x-F32.gguf")
    page.add_model("/m/x-Q8_0.gguf")
    page.add_model("/m/x-Q4_0.gguf")
    page.text_file.setText(str(text))
    return page


@pytest.mark.gui
def test_a_run_shows_progress_and_each_report_as_it_comes(ready_page, qtbot, monkeypatch):
    import threading

    from quantdesk.core import evaluate
    from quantdesk.core.evaluate import EvalProgress
    page, seen = ready_page, {}

    def fake_compare(models, reference, text, *, n_ctx, max_chunks, progress, cancel, on_result):
        seen.update(models=models, reference=reference, text=text, n_ctx=n_ctx,
                    thread=threading.current_thread())
        reports = []
        for i, (model, kld) in enumerate(zip(models, (0.001, 0.05)), 1):
            progress(EvalProgress("model", model, i, 2, 1, 2, i, 2))
            reports.append(_r(model.split("-")[-1][:-5], 145_000_000 // i, kld))
            on_result(reports[-1])
        return reports
    monkeypatch.setattr(evaluate, "compare", fake_compare)

    shown = []  # the table as each report arrived
    page.results.modelReset.connect(lambda: shown.append(page.results.rowCount()))
    page.start()
    assert not page.run_button.isEnabled() and page.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: page.run_button.isEnabled(), timeout=10000)
    assert seen["models"] == ["/m/x-Q8_0.gguf", "/m/x-Q4_0.gguf"]
    assert seen["reference"] == "/m/x-F32.gguf" and seen["text"].startswith("some text")
    assert seen["thread"] is not threading.main_thread()
    assert shown[:3] == [0, 1, 2]                        # cleared, then one row per report
    assert [page.results.index(i, 0).data() for i in range(2)] == ["Q8_0 ★", "Q4_0 ★"]
    assert page.progress.value() == 100 and "Reference PPL 23.500" in page.status.text()
    assert page.csv_button.isEnabled() and not page.cancel_button.isEnabled()


@pytest.mark.gui
def test_cancel_stops_the_run_and_says_so(ready_page, qtbot, monkeypatch):
    import time

    from quantdesk.core import evaluate
    from quantdesk.core.evaluate import Cancelled
    page = ready_page

    def fake_compare(models, reference, text, *, cancel, **_kw):
        while not cancel.cancelled:   # the real one checks between windows
            time.sleep(0.01)
        raise Cancelled("cancelled")
    monkeypatch.setattr(evaluate, "compare", fake_compare)
    page.start()
    page.cancel_button.click()
    assert page.status.text() == "Cancelling…"
    qtbot.waitUntil(lambda: page.run_button.isEnabled(), timeout=10000)
    assert page.status.text() == "Cancelled." and page.task is None


@pytest.fixture
def quality_window(qtbot, tmp_path, monkeypatch, starter_model):
    """The main window over a throw-away home with two tiny GGUFs of one model and one of
    another in its library (the starter model is listed too)."""
    from hub.ggufs import write_model

    from quantdesk.app.main_window import MainWindow
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    models = tmp_path / "home" / "models"
    models.mkdir(parents=True)
    files = {q: write_model(models / f"tiny-{q}.gguf", q)[0] for q in ("F16", "Q8_0")}
    files["stranger"] = write_model(models / "other-Q8_0.gguf", "Q8_0", n_embd=512)[0]
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: all(win.library.model.row_of(p) >= 0 for p in files.values()),
                    timeout=20000)
    win.show_page("Quality")
    return win, win.quality_page.page, files


@pytest.mark.gui
def test_library_models_are_offered_and_a_stranger_is_refused(quality_window, qtbot, monkeypatch):
    """Issue 14 item 3: the reference and quants come from the library (no typing of paths), a
    quant of another model is refused with one line before anything is scored, the ★ is
    explained."""
    from quantdesk.core.evaluate import report as report_module
    from quantdesk.core.evaluate.cache import cache_root
    win, page, files = quality_window
    scored = []
    monkeypatch.setattr(report_module, "run_job", lambda *a, **k: scored.append(a) or 1 / 0)
    model = win.library.model
    page.reference_picker.activated.emit(model.row_of(files["F16"]))
    assert page.reference.text() == str(files["F16"])
    for key in ("Q8_0", "stranger"):
        page.quant_picker.activated.emit(model.row_of(files[key]))
    assert page.model_paths() == [str(files["Q8_0"]), str(files["stranger"])]
    assert page.quant_picker.currentIndex() == -1       # ready for the next pick

    with qtbot.waitSignal(page.run_button.clicked):
        page.run_button.click()
    qtbot.waitUntil(lambda: page.task is None and page.run_button.isEnabled(), timeout=20000)
    status = page.status.text()
    assert status.startswith("Failed: other-Q8_0.gguf is not a quant of tiny-F16.gguf: tensor ")
    assert "\n" not in status and scored == []
    assert not (cache_root() / "reports").exists()       # nothing measured, nothing cached

    # The ★ is explained where it appears: a legend under the chart and the column's tooltip.
    from PySide6.QtCore import Qt
    assert page.star_legend.isVisible() and "smaller and closer" in page.star_legend.text()
    assert "★" in page.results.headerData(0, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
