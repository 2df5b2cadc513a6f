"""The Quantize page driven by qtbot: a tiny F32 llama GGUF (built here) to Q8_0 through the real
pipeline, its progress, the library entry, a real cancel, and the refusals that protect the user."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui

VRAM = 8 << 30  # the fit badges are planned for a faked 8 GiB GPU


@pytest.fixture(scope="session")
def tiny_f32(tmp_path_factory) -> Path:
    """A 4-layer llama with random weights, as our own F32 GGUF (llama.cpp loads it)."""
    from pipeline.tiny_llama import build_tiny_llama
    from quantdesk.core.quantize import quantize_model
    base = tmp_path_factory.mktemp("tiny-quantize")
    build_tiny_llama(base / "hf", n_layer=4)
    return quantize_model(base / "hf", base / "tiny-llama-F32.gguf", "F32").path


@pytest.fixture
def page(window, qtbot):
    window.library.fit_overrides = {"vram": VRAM}
    window.show_page("Quantize")
    page = window.quantize_page.page
    assert page is not None, "the Quantize page did not build"
    return page


def pick_source(page, qtbot, path):
    with qtbot.waitSignal(page.source_ready, timeout=180000) as ready:
        page.set_source(path)
    return ready.args[0]


def test_quantize_to_q8_0_shows_progress_and_lands_in_the_library(page, window, qtbot, tiny_f32):
    from quantdesk.app import fit
    from quantdesk.core.runtime.quantize import OUTPUT_TYPES
    from quantdesk.core.gguf import inspect_gguf
    from quantdesk.core.hardware import detect
    from quantdesk.core.paths import models_dir
    from quantdesk.core.planner import options_for

    summary = pick_source(page, qtbot, tiny_f32)
    assert summary.refusal is None and page.requant_box.isHidden()
    # Every output type has a row: bits/weight, size, the planner's quality note and fit badge.
    assert [page.types.type_row(r).name for r in range(page.types.rowCount())] == list(OUTPUT_TYPES)
    plans, _best = options_for(tiny_f32, n_ctx=fit.BADGE_CTX, types=OUTPUT_TYPES,
                               hardware=detect().with_overrides(vram=VRAM))
    q8_plan = next(p for p in plans if p.type == "Q8_0")
    row = page.types.row_of("Q8_0")
    cell = lambda col: page.types.index(row, col).data()  # noqa: E731
    assert cell(4) == fit.badge(q8_plan) == "full GPU"
    assert cell(3).startswith("KLD 0.0014")
    assert 8.0 < float(cell(1)) < 9.0

    page.select_type("Q8_0")
    out = Path(page.output.text())
    assert out == models_dir() / "tiny-llama-Q8_0.gguf" and not out.exists()
    reports = []
    page.progress.connect(reports.append)
    with qtbot.waitSignal(page.quantized, timeout=300000) as done:
        assert page.run()
        assert page.cancel_button.isEnabled() and not page.run_button.isEnabled()
    assert done.args[0] == str(out)

    # Progress in bytes reached the GUI thread, growing to the whole source.
    assert reports and reports[-1].done_bytes == reports[-1].total_bytes
    assert [r.done_bytes for r in reports] == sorted(r.done_bytes for r in reports)
    # The file is a valid Q8_0 GGUF of the size the table promised (tensor data + header).
    info = inspect_gguf(out)
    expected = page.types.type_row(row).size_bytes
    assert info.file_type == "Q8_0" and expected <= info.size_bytes < expected + (1 << 20)
    assert not out.with_name(out.name + ".part").exists()
    assert window.library.model.row_of(out) >= 0
    assert page.chat_button.isEnabled() and "Wrote" in page.status.text()
    # The next default name does not point at the file just written.
    assert Path(page.output.text()) != out

    # "Chat with it": the Chat page loads the new model (llama.cpp accepts our file).
    chat = window.chat_page
    with qtbot.waitSignal(chat.model_loaded, timeout=180000) as loaded:
        page.chat_button.click()
    assert window.current_page() == "Chat" and loaded.args[0].path == str(out)

    # "Quality report…" opens the report page set to compare the quant with its source.
    assert page.report_button.isEnabled()
    page.report_button.click()
    assert window.current_page() == "Quality"
    report = window.quality_page.page
    assert report.reference.text() == str(tiny_f32)
    assert [report.models.item(i).text() for i in range(report.models.count())] == [str(out)]


def test_cancel_mid_run_leaves_no_file(page, qtbot, tiny_f32, monkeypatch):
    from quantdesk.app.pages.quantize import page as page_module
    pick_source(page, qtbot, tiny_f32)
    page.select_type("Q8_0")
    out = Path(page.output.text())
    seen, clicked = [], threading.Event()
    real_job = page_module.quantize_job

    def held_job(request):  # the real job, whose writer waits after its first report
        job = real_job(request)

        def run(report, cancel):
            def hold_until_cancel_clicked(progress):  # pool thread: the writer waits, mid-run
                seen.append(progress)
                report(progress)
                clicked.wait(60)
            return job(hold_until_cancel_clicked, cancel)
        return run

    def click_cancel(_report):  # GUI thread: the first report on screen, the user cancels
        if not clicked.is_set():
            page.cancel_button.click()
            clicked.set()

    monkeypatch.setattr(page_module, "quantize_job", held_job)
    page.progress.connect(click_cancel)
    with qtbot.waitSignal(page.job_started, timeout=5000) as started:
        assert page.run()
    with qtbot.waitSignal(started.args[0].cancelled, timeout=300000):
        pass
    assert seen and seen[0].done_bytes < seen[0].total_bytes  # stopped mid-run
    assert not out.exists() and not out.with_name(out.name + ".part").exists()
    assert list(out.parent.glob("*.gguf*")) == []
    assert "Cancelled" in page.status.text() and not page.chat_button.isEnabled()
    assert page.run_button.isEnabled() and not page.cancel_button.isEnabled()


def test_quantized_source_needs_consent_and_existing_files_are_kept(page, qtbot, starter_model,
                                                                    tmp_path, monkeypatch):
    summary = pick_source(page, qtbot, starter_model)
    # The pipeline's own refusal is shown, with the explicit way around it.
    assert "already quantized" in summary.refusal
    assert page.requant_note.isVisible() and page.requant_box.isVisible()
    assert page.requant_note.text() == summary.refusal
    page.select_type("Q4_0")
    out = tmp_path / "mine.gguf"
    page.output.setText(str(out))
    with qtbot.waitSignal(page.job_started, timeout=5000):
        assert page.run()
    qtbot.waitUntil(lambda: not page.running, timeout=60000)
    assert "already quantized" in page.banner.text() and "\n" not in page.banner.text()
    assert not out.exists()

    # An existing file is replaced only when the user says so.
    out.write_bytes(b"my own notes")
    asked = []
    monkeypatch.setattr(page, "ask_overwrite", lambda path: asked.append(path) or False)
    assert page.run() is False
    assert asked == [out] and out.read_bytes() == b"my own notes"


def test_every_door_picks_a_source(page, window, qtbot, tiny_f32, starter_model, monkeypatch):
    from PySide6.QtCore import QMimeData, QPoint, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication, QFileDialog

    # A Hugging Face folder dropped on the page.
    hf = tiny_f32.parent / "hf"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(hf))])
    enter = QDragEnterEvent(QPoint(300, 200), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(page, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(300, 200), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(page.source_ready, timeout=180000) as ready:
        QApplication.sendEvent(page, drop)
    assert ready.args[0].kind == "HF folder" and ready.args[0].path == str(hf)
    assert page.library_picker.currentIndex() == -1  # not a library model
    page.select_type("Q4_K_M")
    assert Path(page.output.text()).name == "hf-Q4_K_M.gguf"

    # The folder dialog.
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(hf))
    with qtbot.waitSignal(page.source_ready, timeout=60000) as ready:
        page.folder_button.click()
    assert ready.args[0].path == str(hf)

    # A library entry.
    row = window.library.model.row_of(starter_model)
    with qtbot.waitSignal(page.source_ready, timeout=60000) as ready:
        page.library_picker.setCurrentIndex(row)
        page.library_picker.activated.emit(row)
    assert ready.args[0].kind == "GGUF" and page.library_picker.currentIndex() == row


@pytest.mark.slow
def test_calibrate_on_my_text_feeds_the_quantizer(page, qtbot, tiny_f32, tmp_path):
    from quantdesk.core.evaluate import sample_text_path
    from quantdesk.core.imatrix import read_imatrix
    from quantdesk.core.quantize import quantize_model
    from pipeline.conftest import gguf_tensors

    pick_source(page, qtbot, tiny_f32)
    options = page.options
    options.calibration_chunks = 2  # two windows of the bundled sample keep it quick
    with qtbot.waitSignal(options.busy_changed, timeout=5000):
        assert options.calibrate(str(sample_text_path()))
    assert not page.run_button.isEnabled()  # no run while the matrix is being computed
    with qtbot.waitSignal(options.calibration.finished, timeout=300000) as done:
        pass
    imatrix = done.args[0].path
    assert page.imatrix.text() == str(imatrix) and imatrix.suffixes[-2:] == [".imatrix", ".gguf"]
    assert "blk.0.attn_q.weight" in read_imatrix(imatrix).entries
    assert page.run_button.isEnabled()

    # The page's run uses it: same bytes as the pipeline given that matrix, unlike without it.
    page.select_type("Q4_K_M")
    out = Path(page.output.text())
    with qtbot.waitSignal(page.job_started, timeout=5000):
        assert page.run()
    qtbot.waitUntil(lambda: not page.running, timeout=600000)
    assert page.banner.text() == "" and page.result is not None
    ours = gguf_tensors(out)
    with_im = gguf_tensors(quantize_model(tiny_f32, tmp_path / "im.gguf", "Q4_K_M",
                                          imatrix=imatrix).path)
    without = gguf_tensors(quantize_model(tiny_f32, tmp_path / "plain.gguf", "Q4_K_M").path)
    assert ours == with_im and ours != without


def test_page_and_plan_command_give_the_same_figures(page, window, qtbot, tmp_path, capsys):
    """The Quantize page and `quantdesk plan` on one HF folder (rows of 320 and 864 weights, not
    multiples of 256): the same size, memory, GPU layers and fit per type, and the same pick."""
    import json

    from pipeline.tiny_llama import build_tiny_llama
    from quantdesk.app import fit
    from quantdesk.core.cli import main
    folder = tmp_path / "odd-rows"
    build_tiny_llama(folder, n_layer=2, n_embd=320, n_ff=864, seed=3)
    ram = 16 << 30
    window.library.fit_overrides = {"vram": VRAM, "ram": ram}
    summary = pick_source(page, qtbot, folder)
    assert main(["plan", str(folder), "--ctx", str(fit.BADGE_CTX), "--vram", str(VRAM),
                 "--ram", str(ram), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    cli = {o["type"]: o for o in data["options"]}
    assert [r.name for r in summary.rows] and set(cli) == {r.name for r in summary.rows}
    keys = ("size_bytes", "ram_bytes", "vram_bytes", "gpu_layers", "fit", "n_ctx")
    for row in summary.rows:
        assert row.size_bytes == cli[row.name]["size_bytes"], row.name
        assert {k: row.plan.to_json()[k] for k in keys} == {k: cli[row.name][k] for k in keys}
    assert summary.recommended == data["recommended"]["type"]


def test_run_buttons_stay_put_and_a_late_cancel_starts_nothing(page, qtbot, tiny_f32):
    """Issue 14 item 8: the buttons never move when a run ends, a click where Cancel was lands on
    a disabled Cancel, and a second start while a run is under way is refused."""
    from quantdesk.app.pages.quantize.page import QuantizePage
    pick_source(page, qtbot, tiny_f32)
    page.select_type("Q8_0")
    buttons = (page.cancel_button, page.run_button, page.report_button, page.chat_button)
    assert all(b.isVisible() for b in buttons)
    before = [b.geometry() for b in buttons]
    starts = []
    page.job_started.connect(starts.append)
    with qtbot.waitSignal(page.job_started, timeout=5000):
        assert page.run()
    assert page.run() is False and QuantizePage.run(page) is False  # one run at a time
    qtbot.wait(50)   # layouts settle
    during = [b.geometry() for b in buttons]
    cancel_spot = page.cancel_button.geometry().center()
    with qtbot.waitSignal(page.quantized, timeout=300000):
        pass
    qtbot.wait(50)
    assert [b.geometry() for b in buttons] == during == before
    assert page.chat_button.isEnabled() and not page.cancel_button.isEnabled()
    # The user's late click on Cancel: it hits Cancel (disabled), nothing starts.
    assert page.childAt(cancel_spot) is page.cancel_button
    qtbot.mouseClick(page.childAt(cancel_spot), Qt.MouseButton.LeftButton)
    qtbot.wait(100)
    assert len(starts) == 1 and not page.running
    assert "Wrote" in page.status.text()
