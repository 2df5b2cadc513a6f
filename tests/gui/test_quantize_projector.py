"""The Quantize page and a multimodal HF folder: "Also write the vision projector (mmproj)" is
offered (ticked) when the projector can be written, the run writes it next to the model through
the same job, a cancel leaves neither file, and an earlier projector is never replaced."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from gguf import GGUFReader

from tests.gui.test_quantize_page import pick_source

pytestmark = pytest.mark.gui


@pytest.fixture(scope="session")
def tiny_gemma3(tmp_path_factory) -> Path:
    from tests.mmproj.tiny_gemma3 import build_tiny_gemma3
    return build_tiny_gemma3(tmp_path_factory.mktemp("gemma3-gui") / "tiny-gemma3").folder


@pytest.fixture
def page(window, qtbot):
    window.show_page("Quantize")
    page = window.quantize_page.page
    assert page is not None, "the Quantize page did not build"
    return page


def _projector_row_shown(page) -> bool:
    return page.options._form.isRowVisible(page.options.projector)


@pytest.mark.slow
def test_the_projector_is_written_next_to_the_model(page, qtbot, tiny_gemma3):
    from quantdesk.core.paths import models_dir
    summary = pick_source(page, qtbot, tiny_gemma3)
    assert summary.vision and summary.vision_refusal is None
    box = page.options.projector
    assert _projector_row_shown(page) and box.isEnabled() and box.isChecked()
    page.select_type("F16")
    out = Path(page.output.text())
    earlier = models_dir() / "mmproj-tiny-gemma3-f16.gguf"
    earlier.parent.mkdir(parents=True, exist_ok=True)
    earlier.write_bytes(b"an earlier projector")
    reports = []
    page.progress.connect(reports.append)
    with qtbot.waitSignal(page.quantized, timeout=300000):
        assert page.run()
        assert "mmproj-tiny-gemma3-f16-2.gguf" in page.status.text()
    written = models_dir() / "mmproj-tiny-gemma3-f16-2.gguf"
    reader = GGUFReader(written)
    assert reader.get_field("general.type").contents() == "mmproj"
    assert reader.get_field("clip.projector_type").contents() == "gemma3"
    assert GGUFReader(out).get_field("general.architecture").contents() == "gemma3"
    assert earlier.read_bytes() == b"an earlier projector"
    assert written.name in page.status.text()
    # the library lists the model, not its projector (a companion file, not a model)
    assert page.library.model.row_of(out) >= 0
    assert page.library.model.row_of(written) < 0
    # progress of both files reached the window: the projector's tensors, then the model's
    assert any(r.tensor.startswith("v.") for r in reports)
    assert any(r.tensor.startswith("blk.") for r in reports)


@pytest.mark.slow
def test_unticked_writes_the_model_only(page, qtbot, tiny_gemma3, tmp_path):
    pick_source(page, qtbot, tiny_gemma3)
    page.select_type("F16")
    page.options.projector.setChecked(False)
    folder = tmp_path / "out"   # tmp_path holds the window's home folder too
    folder.mkdir()
    page.output.setText(str(folder / "model-F16.gguf"))
    with qtbot.waitSignal(page.quantized, timeout=300000):
        assert page.run()
    assert [p.name for p in folder.iterdir()] == ["model-F16.gguf"]


@pytest.mark.slow
def test_cancel_while_writing_the_projector_leaves_nothing(page, qtbot, tiny_gemma3, tmp_path,
                                                           monkeypatch):
    from quantdesk.app.pages.quantize import page as page_module
    pick_source(page, qtbot, tiny_gemma3)
    page.select_type("F16")
    folder = tmp_path / "out"
    folder.mkdir()
    page.output.setText(str(folder / "model-F16.gguf"))
    seen, clicked = [], threading.Event()
    real_job = page_module.quantize_job

    def held_job(request):   # the real job, whose writer waits after its first report
        job = real_job(request)

        def run(report, cancel):
            def hold(progress):
                seen.append(progress)
                report(progress)
                clicked.wait(60)
            return job(hold, cancel)
        return run

    def click_cancel(_p):
        if not clicked.is_set():
            page.cancel_button.click()
            clicked.set()
    monkeypatch.setattr(page_module, "quantize_job", held_job)
    page.progress.connect(click_cancel)
    with qtbot.waitSignal(page.job_started, timeout=5000) as started:
        assert page.run()
    with qtbot.waitSignal(started.args[0].cancelled, timeout=300000):
        pass
    assert seen and seen[0].tensor.startswith(("v.", "mm."))   # stopped in the projector
    assert list(folder.iterdir()) == []
    assert "Cancelled" in page.status.text()


def test_no_vision_tower_no_box_and_a_refusal_is_shown(page, qtbot, tiny_gemma3, tmp_path):
    from tests.pipeline.tiny_llama import build_tiny_other
    text_only = tmp_path / "text-only"
    build_tiny_other(text_only, "Gemma3ForCausalLM")
    pick_source(page, qtbot, text_only)
    assert not _projector_row_shown(page) and not page.options.projector_wanted()

    broken = tmp_path / "no-preprocessor"
    shutil.copytree(tiny_gemma3, broken)
    (broken / "preprocessor_config.json").unlink()
    summary = pick_source(page, qtbot, broken)
    assert summary.vision and "no preprocessor_config.json" in summary.vision_refusal
    box = page.options.projector
    assert _projector_row_shown(page) and not box.isEnabled() and not box.isChecked()
    assert "no preprocessor_config.json" in box.toolTip()
