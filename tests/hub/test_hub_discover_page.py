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
    # Before any search the page lists the popular GGUF repos; let that finish so each test
    # starts from a quiet page and counts only its own requests.
    qtbot.waitUntil(lambda: page.results.rowCount() > 0 and not page.results.loading, timeout=10000)
    fakehub.requests.clear()
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
    assert page.recommendation.text().startswith("✓ Convertible here (LlamaForCausalLM) · Recommended here:")
    with qtbot.waitSignal(page.quantize_requested, timeout=20000) as blocker:
        page.quantize_button.click()
    # The checkpoint was fetched into the HF cache first; its folder goes to the Quantize page.
    from quantdesk.core.hub import local_snapshot
    folder = local_snapshot(ST_REPO)
    assert blocker.args == [str(folder), page.recommended_type or ""]
    assert (folder / "model.safetensors").read_bytes() == fakehub.repos[ST_REPO].files["model.safetensors"]


def test_popular_gguf_repos_show_before_any_search(qtbot, hub_env, fakehub, tmp_path):
    from quantdesk.app.pages.discover import DiscoverPage
    from quantdesk.core.hub.manager import DownloadManager
    page = DiscoverPage(DownloadManager(tmp_path / "downloads.json"), n_ctx=1024)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: page.results.rowCount() >= 3, timeout=10000)
    shown = [page.results.item(r).repo_id for r in range(3)]   # the view may have asked for more
    # GGUF repos only, most downloaded first (the safetensors repo has more than the fillers)
    assert shown == [GGUF_REPO, GATED_REPO, "filler/llama-6-GGUF"]
    assert "Popular GGUF models" in page.results_caption.text()
    search = [r for r in fakehub.requests if r[1].startswith("/api/models?")][0]
    assert "sort=downloads" in search[1] and "filter=gguf" in search[1]
    assert page.filter_box.currentData() == "gguf" and page.sort_box.currentData() == "downloads"
    page.shutdown()


def test_licence_from_the_card_and_parameters_from_the_header(qtbot, page, fakehub, gguf_files):
    """A repo the hub says nothing about: no licence in cardData/tags, no gguf block."""
    from .fakehub import front_matter_card
    from quantdesk.app import formatting
    repo = "plain-org/Bare-GGUF"
    fakehub.add_repo(repo, {"README.md": front_matter_card("# Bare\n", license="mit", tags="[gguf]"),
                            "bare.Q8_0.gguf": gguf_files["tiny-llama.Q8_0.gguf"]},
                     tags=["gguf"], license="mit", license_in_api=False, downloads=1)
    page.query.setText("Bare")
    page.search()
    qtbot.waitUntil(lambda: page.results.rowCount() == 1, timeout=10000)
    page.results_view.selectRow(0)
    qtbot.waitUntil(lambda: page.details is not None and page.details.repo_id == repo, timeout=10000)
    qtbot.waitUntil(lambda: "licence: mit" in page.repo_title.text(), timeout=10000)
    qtbot.waitUntil(lambda: page.variants.item(0).remote is not None, timeout=10000)
    params = page.variants.item(0).remote.parameters
    qtbot.waitUntil(lambda: f"{formatting.params(params)} parameters" in page.repo_title.text(),
                    timeout=10000)
    assert page.details.parameters == params and "?" not in page.repo_title.text()
    assert page.variants.data(page.variants.index(0, 2)) != "…"   # bits/weight follow


class _Task:
    def __init__(self, total, done, state="running"):
        self.id, self.filename, self.state = "t1", "huge.Q8_0.gguf", state
        self.total_bytes, self.done_bytes = total, done
        self.phase, self.error, self.speed_bps, self.eta_s, self.path = "", None, 0.0, None, None
        self.needs_token = False


@pytest.mark.parametrize("answer", [False, True])
def test_cancelling_a_big_download_asks_first(qtbot, page, monkeypatch, answer):
    cancelled, asked = [], []
    monkeypatch.setattr(page.manager, "cancel", cancelled.append)
    monkeypatch.setattr(page, "ask_confirmation", lambda text: asked.append(text) or answer)
    page.downloads.set_rows([_Task(12_000_000_000, 4_100_000_000)])
    page.downloads_view.selectRow(0)
    page.cancel_button.click()
    assert len(asked) == 1 and "12.0 GB" in asked[0] and "4.1 GB" in asked[0]
    assert cancelled == (["t1"] if answer else [])


def test_cancelling_a_small_download_does_not_ask(qtbot, page, monkeypatch):
    cancelled = []
    monkeypatch.setattr(page.manager, "cancel", cancelled.append)
    monkeypatch.setattr(page, "ask_confirmation", lambda text: pytest.fail("asked"))
    page.downloads.set_rows([_Task(20_000_000, 1_000_000)])
    page.downloads_view.selectRow(0)
    page.cancel_button.click()
    assert cancelled == ["t1"]


def test_settings_page_saves_a_token_through_huggingface_hub(qtbot, hub_env, fakehub):
    """Checked against the hub, stored where huggingface_hub keeps it, never shown again."""
    from pathlib import Path
    from quantdesk.app.pages.settings import SettingsPage
    page = SettingsPage()
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: "No token saved" in page.token_state.text(), timeout=10000)
    page.token_edit.setText("hf_wrong")
    page.save_token()
    qtbot.waitUntil(lambda: page.token_message.text().startswith("Not saved"), timeout=10000)
    assert not Path(hub_env["HF_TOKEN_PATH"]).exists()
    fakehub.tokens.add("hf_secret_ok")
    page.token_edit.setText("hf_secret_ok")
    page.save_token()
    qtbot.waitUntil(lambda: page.token_message.text().startswith("Saved"), timeout=10000)
    assert "tester" in page.token_message.text() and page.token_edit.text() == ""
    assert Path(hub_env["HF_TOKEN_PATH"]).read_text().strip() == "hf_secret_ok"
    qtbot.waitUntil(lambda: page.token_state.text() == "A token is saved.", timeout=10000)
    shown = " ".join(w.text() for w in (page.token_state, page.token_message, page.message))
    assert "hf_secret_ok" not in shown
    page.shutdown()


def test_unconvertible_safetensors_repo_says_why_before_any_download(qtbot, page, fakehub):
    import json

    from .conftest import LLAMA_CONFIG
    from quantdesk.core.hub import repo_details
    fakehub.add_repo("odd-org/Mamba-Thing", {"config.json": json.dumps(
        {**LLAMA_CONFIG, "architectures": ["MambaThingForCausalLM"]}).encode(),
        "model.safetensors": b"\0" * 2048}, tags=["safetensors"],
        safetensors={"parameters": {"BF16": 1000}, "total": 1000})
    page._show_repo(repo_details("odd-org/Mamba-Thing"))
    qtbot.waitUntil(lambda: page.recommendation.text() != "", timeout=20000)
    assert page.recommendation.text().startswith(
        "<span style='color:#b00020'>✗ Cannot convert this repo: unsupported architecture MambaThingForCausalLM")
    assert page.quantize_button.isVisibleTo(page) and not page.quantize_button.isEnabled()
    assert "MambaThingForCausalLM" in page.quantize_button.toolTip()
    assert page.quantize_locally() is False
    assert not [r for r in fakehub.requests if "model.safetensors" in str(r)]


def test_search_list_marks_convertible_safetensors_repos(qtbot, page, fakehub):
    import json

    from PySide6.QtCore import Qt

    from .conftest import LLAMA_CONFIG, ST_REPO
    fakehub.add_repo("odd-org/Rwkv-Thing", {"config.json": json.dumps(
        {**LLAMA_CONFIG, "architectures": ["RwkvForCausalLM"]}).encode(), "model.safetensors": b"\0" * 64},
        tags=["safetensors"], downloads=1)
    page.filter_box.setCurrentIndex(page.filter_box.findData("safetensors"))
    page.search()
    qtbot.waitUntil(lambda: page.results.rowCount() == 2, timeout=10000)
    ok, odd = (page.results.index(_row_of(page.results, r), 0) for r in (ST_REPO, "odd-org/Rwkv-Thing"))
    assert ok.data().endswith("✓ convertible") and odd.data().endswith("✗ not convertible")
    assert "cannot convert: unsupported architecture RwkvForCausalLM" in odd.data(Qt.ItemDataRole.ToolTipRole)
