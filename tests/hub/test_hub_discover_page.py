"""The Discover page (offscreen Qt) against the fake hub: search with lazy paging, a model page
with fit badges from remote headers, a download that reaches the cache, gated token flow, offline."""
from __future__ import annotations

import pytest

from .conftest import GATED_REPO, GGUF_REPO

pytestmark = pytest.mark.gui


@pytest.fixture
def page(qtbot, hub_env, fakehub, tmp_path):
    from quantdesk.app.pages.discover import DiscoverPage
    from quantdesk.core.hub.manager import DownloadManager
    page = DiscoverPage(DownloadManager(tmp_path / "downloads.json"), n_ctx=1024)
    qtbot.addWidget(page)
    page.resize(1100, 760)
    page.show()
    yield page
    page.shutdown()


def _row_of(model, repo_id):
    return next(r for r in range(model.rowCount()) if model.item(r).repo_id == repo_id)


def test_search_pages_and_model_page_with_fit_badges(qtbot, page, fakehub, tmp_path):
    page.query.setText("llama")
    page.sort_box.setCurrentIndex(page.sort_box.findData("downloads"))
    page.search()
    qtbot.waitUntil(lambda: page.results.rowCount() >= 3, timeout=10000)
    # the view asks for more rows as it is shown/scrolled; all 9 arrive through Link-header pages
    for _ in range(5):
        if page.results.canFetchMore():
            page.results.fetchMore()
        qtbot.waitUntil(lambda: not page.results.loading, timeout=10000)
    assert page.results.rowCount() == 9 and not page.results.has_more

    page.results_view.selectRow(_row_of(page.results, GGUF_REPO))
    qtbot.waitUntil(lambda: page.details is not None and page.variants.rowCount() == 3, timeout=10000)
    qtbot.waitUntil(lambda: all(v.fit or v.fit_note for v in page.variants._rows), timeout=20000)
    texts = [page.variants.data(page.variants.index(r, 3)) for r in range(3)]
    labels = ("fits on GPU", "partial offload", "CPU only", "does not fit")
    assert all(t.startswith(labels) for t in texts), texts
    assert "apache-2.0" in page.repo_title.text()
    qtbot.waitUntil(lambda: "A test model." in page.card.toPlainText(), timeout=10000)
    page.grab().save(str(tmp_path / "discover.png"))

    page.variants_view.selectRow(0)   # smallest variant
    variant = page.variants.item(0)
    with qtbot.waitSignal(page.downloaded, timeout=20000) as blocker:
        page.download_selected()
    assert open(blocker.args[0], "rb").read() == fakehub.repos[GGUF_REPO].files[variant.files[0].name]
    qtbot.waitUntil(lambda: page.downloads.item(0).state == "done", timeout=5000)


def test_gated_download_shows_the_token_row(qtbot, page, fakehub):
    from quantdesk.core.hub import repo_details
    page.details = repo_details(GATED_REPO)
    page.variants.set_rows(page.details.variants)
    page.download_selected()
    qtbot.waitUntil(lambda: page.token_row.isVisible(), timeout=10000)
    fakehub.tokens.add("hf_ok")
    page.token_edit.setText("hf_ok")
    with qtbot.waitSignal(page.downloaded, timeout=20000):
        page.save_token()
    assert not page.token_row.isVisible()


def test_offline_search_says_so(qtbot, page, fakehub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    page.search()
    assert page.message.isVisible() and "offline" in page.message.text()
    assert fakehub.requests == []


def test_safetensors_repo_offers_local_quantization(qtbot, page, fakehub):
    from .conftest import ST_REPO
    page.filter_box.setCurrentIndex(page.filter_box.findData("safetensors"))
    page.search()
    qtbot.waitUntil(lambda: page.results.rowCount() == 1, timeout=10000)
    page.results_view.selectRow(0)
    qtbot.waitUntil(lambda: page.details is not None and page.recommendation.text() != "", timeout=20000)
    assert page.quantize_button.isVisibleTo(page) and not page.download_button.isEnabled()
    assert "BF16" in page.repo_title.text()
    assert page.recommendation.text().startswith("Recommended here:")
    with qtbot.waitSignal(page.quantize_requested, timeout=20000) as blocker:
        page.quantize_button.click()
    # The checkpoint was fetched into the HF cache first; its folder goes to the Quantize page.
    from quantdesk.core.hub import local_snapshot
    folder = local_snapshot(ST_REPO)
    assert blocker.args == [str(folder), page.recommended_type or ""]
    assert (folder / "model.safetensors").read_bytes() == fakehub.repos[ST_REPO].files["model.safetensors"]
