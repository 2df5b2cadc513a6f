"""Fetching a safetensors checkpoint for local quantization (issue 14 item 1, the core half):
a tiny Llama built by the tests, served by the fake hub, lands in the HF cache as a folder the
quantizer opens; a cancel keeps the bytes but marks nothing complete; the next fetch resumes."""
from __future__ import annotations

import pytest

HF_REPO = "test-org/Tiny-Llama-HF"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> dict[str, bytes]:
    """Repo file name -> bytes of a 2-shard tiny Llama (index, config, tokenizer)."""
    from pipeline.tiny_llama import build_tiny_llama
    folder = tmp_path_factory.mktemp("hf-repo") / "Tiny-Llama-HF"
    build_tiny_llama(folder, n_layer=2, shards=2)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def hf_repo(fakehub, tiny_checkpoint):
    weights = sum(len(b) for n, b in tiny_checkpoint.items() if n.endswith(".safetensors"))
    # A consolidated copy the index does not name (as Mistral repos have): never fetched.
    files = {**tiny_checkpoint, "README.md": b"# tiny\n", "consolidated.safetensors": b"\0" * 4096}
    fakehub.add_repo(HF_REPO, files, tags=["safetensors", "llama", "text-generation"],
                     downloads=1000, likes=100,
                     safetensors={"parameters": {"BF16": weights // 2}, "total": weights // 2})
    return fakehub.repos[HF_REPO]


def test_fetch_lands_a_checkpoint_the_quantizer_opens(hub_env, hf_repo, fakehub):
    from quantdesk.core.convert import open_source
    from quantdesk.core.hub import fetch_snapshot, local_snapshot
    from quantdesk.core.hub.connection import cache_dir
    events = []
    snap = fetch_snapshot(HF_REPO, report=events.append)
    assert snap.folder == cache_dir() / "models--test-org--Tiny-Llama-HF" / "snapshots" / hf_repo.sha
    wanted = {n for n in hf_repo.files if n not in ("README.md", "consolidated.safetensors")}
    assert set(snap.files) == wanted and {p.name for p in snap.folder.iterdir()} == wanted
    for name in wanted:
        assert (snap.folder / name).read_bytes() == hf_repo.files[name]
    assert fakehub.resolve_requests("consolidated.safetensors") == []
    assert local_snapshot(HF_REPO) == snap.folder
    # Progress in bytes over the whole checkpoint, ending at its size.
    total = sum(len(hf_repo.files[n]) for n in wanted)
    assert events[-1].done_bytes == events[-1].total_bytes == total
    assert events[-1].files_done == events[-1].files_total == len(wanted)
    assert snap.fetched_bytes == total
    source = open_source(snap.folder)
    try:
        assert source.params.arch == "llama" and len(source.tensors) > 10
    finally:
        source.close()

    # Fetched again: nothing is downloaded (no file GET at all).
    gets = len(fakehub.resolve_requests())
    again = fetch_snapshot(HF_REPO)
    assert again.folder == snap.folder and again.fetched_bytes == 0
    assert len(fakehub.resolve_requests()) == gets


def test_cancel_marks_nothing_complete_and_the_next_fetch_resumes(hub_env, hf_repo, fakehub):
    from quantdesk.core.cancel import CancelToken
    from quantdesk.core.hub import DownloadCancelled, fetch_snapshot, local_snapshot, snapshot_job
    from quantdesk.core.hub.connection import cache_dir
    shard = "model-00001-of-00002.safetensors"
    size = len(hf_repo.files[shard])
    fakehub.delay = 0.05                       # per 64 KiB: the shard takes a while
    token, seen = CancelToken(), []

    def report(p):
        seen.append(p)
        if p.filename == shard and p.done_bytes > 0 and not token.cancelled:
            token.cancel()                     # mid-shard, as the user clicks Cancel
    with pytest.raises(DownloadCancelled, match="kept"):
        snapshot_job(HF_REPO)(report, token)
    storage = cache_dir() / "models--test-org--Tiny-Llama-HF"
    assert local_snapshot(HF_REPO) is None and not (storage / "refs" / "main").exists()
    partial = list((storage / "blobs").glob("*.incomplete"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < size
    kept = partial[0].stat().st_size
    assert not (storage / "snapshots" / hf_repo.sha / shard).exists()

    fakehub.delay = 0.0
    before = len(fakehub.requests)
    snap = fetch_snapshot(HF_REPO)
    assert local_snapshot(HF_REPO) == snap.folder
    assert (snap.folder / shard).read_bytes() == hf_repo.files[shard]
    resumed = [r for r in fakehub.requests[before:] if r[0] == "GET" and r[1].endswith(shard)]
    assert [r[2] for r in resumed] == [f"bytes={kept}-"]     # one ranged GET from where it stopped
    refetched = [r for r in fakehub.requests[before:] if r[0] == "GET" and r[1].endswith("config.json")]
    assert refetched == []                                 # files complete before are not fetched again
    assert snap.fetched_bytes == size - kept + len(hf_repo.files["model-00002-of-00002.safetensors"])


@pytest.fixture
def window(qtbot, hub_env):
    from quantdesk.app.main_window import MainWindow
    win = MainWindow()
    qtbot.addWidget(win)   # closed at teardown: pages stop their work
    win.show()
    return win


def _open_repo(win, qtbot):
    win.show_page("Discover")
    page = win.discover_page.page
    page.filter_box.setCurrentIndex(page.filter_box.findData("safetensors"))
    page.query.setText("Tiny-Llama-HF")
    page.search()
    qtbot.waitUntil(lambda: page.results.rowCount() == 1, timeout=10000)
    page.results_view.selectRow(0)
    qtbot.waitUntil(lambda: page.details is not None and page.recommended_type is not None,
                    timeout=30000)
    assert page.quantize_button.isVisible() and page.quantize_button.isEnabled()
    return page


@pytest.mark.gui
def test_quantize_locally_opens_the_quantize_page_with_the_checkpoint(qtbot, window, hf_repo):
    from quantdesk.core.hub import local_snapshot
    page = _open_repo(window, qtbot)
    qtype = page.recommended_type
    quantize = window.quantize_page.build()
    with qtbot.waitSignal(quantize.source_ready, timeout=180000) as ready:
        page.quantize_button.click()
    folder = local_snapshot(HF_REPO)
    assert folder is not None and ready.args[0].path == str(folder)
    assert ready.args[0].kind == "HF folder" and window.current_page() == "Quantize"
    assert quantize.types.rowCount() > 0 and quantize.selected_type() == qtype
    assert quantize.types.index(quantize.types.row_of(qtype), 0).data().startswith(qtype)
    assert quantize.run_button.isEnabled()
    assert page.fetch.bar.value() == 1000 and not page.fetch.cancel_button.isEnabled()


@pytest.mark.gui
def test_cancelled_fetch_opens_nothing_and_the_next_click_resumes(qtbot, window, hf_repo, fakehub):
    from quantdesk.core.hub import local_snapshot
    page = _open_repo(window, qtbot)
    quantize = window.quantize_page.build()
    opened = []
    quantize.source_ready.connect(opened.append)
    fakehub.delay = 0.05
    shard = "model-00001-of-00002.safetensors"

    def cancel_mid_shard(p):
        if p.filename == shard and p.done_bytes and page.fetch.cancel_button.isEnabled():
            page.fetch.cancel_button.click()
    with qtbot.waitSignal(page.fetch.busy_changed, timeout=5000):
        assert page.quantize_locally()
    assert page.quantize_locally() is False and not page.quantize_button.isEnabled()  # one fetch
    page.fetch.task.event.connect(cancel_mid_shard)
    with qtbot.waitSignal(page.fetch.busy_changed, timeout=60000) as ended:
        pass
    assert ended.args == [False] and "cancelled" in page.fetch.bar.format()
    qtbot.wait(100)
    assert opened == [] and local_snapshot(HF_REPO) is None and page.quantize_button.isEnabled()
    assert window.current_page() == "Discover"

    fakehub.delay = 0.0
    before = len(fakehub.requests)
    with qtbot.waitSignal(quantize.source_ready, timeout=180000) as ready:
        page.quantize_button.click()
    assert ready.args[0].path == str(local_snapshot(HF_REPO))
    ranged = [r[2] for r in fakehub.requests[before:] if r[0] == "GET" and r[1].endswith(shard)]
    assert len(ranged) == 1 and ranged[0].startswith("bytes=") and ranged[0] != "bytes=0-"
