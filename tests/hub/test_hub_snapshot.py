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
