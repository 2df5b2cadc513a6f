"""Downloads into the huggingface_hub cache: resume, verify, cancel, gated, errors."""
from __future__ import annotations

import errno
import hashlib
import os

import pytest

from quantdesk.core import hub
from quantdesk.core.hub import download as dl

from .conftest import GATED_REPO, GGUF_REPO

Q4 = "tiny-llama.Q4_K_M.gguf"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_lands_in_the_hf_cache_layout(hub_env, fakehub, gguf_files):
    events = []
    path = hub.download_file(GGUF_REPO, Q4, progress=events.append)
    repo = fakehub.repos[GGUF_REPO]
    storage = dl.storage_folder(GGUF_REPO)
    assert path == storage / "snapshots" / repo.sha / Q4 and path.is_symlink()
    assert os.path.realpath(path) == str((storage / "blobs" / _sha(gguf_files[Q4])).resolve())
    assert path.read_bytes() == gguf_files[Q4]
    assert (storage / "refs" / "main").read_text() == repo.sha
    assert not list(storage.glob("blobs/*.incomplete"))
    # huggingface_hub itself finds the file (so do other tools and the Library)
    from huggingface_hub import try_to_load_from_cache
    assert try_to_load_from_cache(GGUF_REPO, Q4, cache_dir=hub_env["HF_HUB_CACHE"]) == str(path)
    done = [e.done_bytes for e in events if e.state == "downloading"]
    assert done and done == sorted(done) and events[-1].state == "done"
    assert events[-1].total_bytes == len(gguf_files[Q4])
    # a second call finds it cached: no GET at all
    gets = len(fakehub.resolve_requests(Q4))
    assert hub.download_file(GGUF_REPO, Q4) == path and len(fakehub.resolve_requests(Q4)) == gets


def test_resume_after_a_dropped_connection(hub_env, fakehub, gguf_files):
    fakehub.drop_after[Q4] = 1_000_000
    path = hub.download_file(GGUF_REPO, Q4)
    assert _sha(path.read_bytes()) == _sha(gguf_files[Q4])
    ranges = [r for _, _, r in fakehub.resolve_requests(Q4)]
    assert ranges[0] is None and ranges[1] == "bytes=1000000-"   # the second GET continued, not restarted


def test_pause_then_resume_after_restart(hub_env, fakehub, gguf_files):
    control = hub.DownloadControl()

    def pause_at_first_bytes(p):
        if p.state == "downloading":
            control.pause()
    with pytest.raises(hub.DownloadPaused):
        hub.download_file(GGUF_REPO, Q4, control=control, progress=pause_at_first_bytes)
    storage = dl.storage_folder(GGUF_REPO)
    (partial,) = storage.glob("blobs/*.incomplete")
    kept = partial.stat().st_size
    assert 0 < kept < len(gguf_files[Q4]) and not list(storage.glob("snapshots/*/*"))
    # "restart": nothing in memory survives; a fresh call finds the partial by the blob's name
    path = hub.download_file(GGUF_REPO, Q4)
    assert path.read_bytes() == gguf_files[Q4]
    assert fakehub.resolve_requests(Q4)[-1][2] == f"bytes={kept}-"


def test_cancel_removes_the_partial_file(hub_env, fakehub):
    control = hub.DownloadControl()

    def cancel(p):
        if p.state == "downloading":
            control.cancel()
    with pytest.raises(hub.DownloadCancelled):
        hub.download_file(GGUF_REPO, Q4, control=control, progress=cancel)
    storage = dl.storage_folder(GGUF_REPO)
    assert not list(storage.glob("blobs/*"))


def test_checksum_mismatch_downloads_again(hub_env, fakehub, gguf_files):
    fakehub.corrupt[Q4] = 1
    path = hub.download_file(GGUF_REPO, Q4, sha256=_sha(gguf_files[Q4]))
    assert path.read_bytes() == gguf_files[Q4]
    assert len(fakehub.resolve_requests(Q4)) == 2   # the corrupt copy was thrown away, fetched afresh


def test_checksum_mismatch_twice_fails_and_keeps_nothing(hub_env, fakehub, gguf_files):
    fakehub.corrupt[Q4] = 2
    with pytest.raises(hub.ChecksumError, match="sha256"):
        hub.download_file(GGUF_REPO, Q4)
    storage = dl.storage_folder(GGUF_REPO)
    assert not list(storage.glob("blobs/*")) and not list(storage.glob("snapshots/*/*"))


def test_gated_repo_asks_for_a_token_then_works(hub_env, fakehub, gguf_files):
    with pytest.raises(hub.GatedError) as info:
        hub.download_file(GATED_REPO, "secret.Q8_0.gguf")
    assert info.value.needs_token and "token" in str(info.value) and "\n" not in str(info.value)
    from quantdesk.core.hub.connection import get_token, save_token
    with pytest.raises(hub.GatedError, match="rejected"):
        save_token("hf_wrong")
    fakehub.tokens.add("hf_good")
    assert save_token("hf_good") == "tester"
    # stored where huggingface_hub keeps it, and picked up by later requests
    assert open(hub_env["HF_TOKEN_PATH"]).read().strip() == "hf_good" and get_token() == "hf_good"
    path = hub.download_file(GATED_REPO, "secret.Q8_0.gguf")
    assert path.read_bytes() == gguf_files["tiny-llama.Q8_0.gguf"]


def test_gated_repo_not_yet_approved_is_a_403_gated_error(hub_env, fakehub, monkeypatch):
    fakehub.tokens.add("hf_waiting")
    fakehub.unapproved.add("hf_waiting")
    monkeypatch.setenv("HF_TOKEN", "hf_waiting")
    with pytest.raises(hub.GatedError) as info:
        hub.download_file(GATED_REPO, "secret.Q8_0.gguf")
    assert "gated" in str(info.value) and "\n" not in str(info.value)
    assert fakehub.requests[-1][0] == "HEAD"   # refused at the metadata request, nothing downloaded


def test_not_found_is_one_line(hub_env, fakehub):
    with pytest.raises(hub.NotFoundError, match="not found"):
        hub.download_file(GGUF_REPO, "nope.gguf")
    with pytest.raises(hub.NotFoundError):
        hub.repo_details("test-org/does-not-exist")


def test_offline_mode_blocks_downloads_without_requests(hub_env, fakehub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.OfflineError, match="offline"):
        hub.download_file(GGUF_REPO, Q4)
    assert fakehub.requests == []


@pytest.mark.timeout(120)
def test_network_loss_keeps_the_partial(hub_env, fakehub, gguf_files):
    fakehub.drop_after[Q4] = 1_500_000
    stopped = []

    def stop_hub(p):
        if not stopped:
            stopped.append(True)
            fakehub.stop()   # the next reconnect finds nobody listening
    with pytest.raises((hub.NetworkError, hub.OfflineError)) as info:
        hub.download_file(GGUF_REPO, Q4, progress=stop_hub)
    assert "\n" not in str(info.value)
    (partial,) = dl.storage_folder(GGUF_REPO).glob("blobs/*.incomplete")
    assert partial.stat().st_size == 1_500_000


def test_disk_full_before_start(hub_env, fakehub, monkeypatch):
    import collections
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(hub.DiskFullError, match="disk space"):
        hub.download_file(GGUF_REPO, Q4)
    assert not fakehub.resolve_requests(Q4)


def test_disk_full_while_writing_keeps_the_partial(hub_env, fakehub, monkeypatch):
    real_open = open

    class FullDisk:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, b):
            if self.written + len(b) > 1_200_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(b)
            return self.f.write(b)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def fake_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        return FullDisk(f) if str(path).endswith(".incomplete") and "b" in mode and "r" not in mode else f
    monkeypatch.setattr(dl, "open", fake_open, raising=False)
    with pytest.raises(hub.DiskFullError, match="disk is full"):
        hub.download_file(GGUF_REPO, Q4)
    (partial,) = dl.storage_folder(GGUF_REPO).glob("blobs/*.incomplete")
    assert partial.stat().st_size > 0


@pytest.mark.timeout(120)
def test_stalled_connection_times_out_and_resumes(hub_env, fakehub, gguf_files, monkeypatch):
    monkeypatch.setattr(dl, "READ_TIMEOUT", 0.5)
    fakehub.stall_after[Q4] = 700_000
    path = hub.download_file(GGUF_REPO, Q4)
    assert path.read_bytes() == gguf_files[Q4]
    assert fakehub.resolve_requests(Q4)[-1][2] == "bytes=700000-"


@pytest.mark.timeout(120)
def test_pause_interrupts_a_stalled_connection(hub_env, fakehub, gguf_files, monkeypatch):
    """Pausing closes the silent connection instead of waiting for a read timeout (set huge here)."""
    import threading
    import time
    monkeypatch.setattr(dl, "READ_TIMEOUT", 3600.0)
    fakehub.stall_after[Q4] = 700_000
    control, outcome = hub.DownloadControl(), []

    def run():
        try:
            hub.download_file(GGUF_REPO, Q4, control=control)
        except Exception as exc:  # noqa: BLE001
            outcome.append(exc)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    storage = dl.storage_folder(GGUF_REPO)
    while not any(p.stat().st_size >= 700_000 for p in storage.glob("blobs/*.incomplete")):
        assert worker.is_alive()
        time.sleep(0.05)
    control.pause()
    worker.join(60)
    assert not worker.is_alive() and isinstance(outcome[0], hub.DownloadPaused)
    (partial,) = storage.glob("blobs/*.incomplete")
    assert partial.stat().st_size == 700_000   # kept for the resume


def test_cdn_redirect_keeps_the_token_on_the_hub_and_renews_expired_urls(hub_env, fakehub, gguf_files,
                                                                         monkeypatch):
    """LFS files redirect to a signed URL on another host, as on the real hub: the token is not
    sent there, and when the signature expires mid-download a fresh URL is asked for and the
    download resumes from where it stopped."""
    fakehub.cdn = True
    fakehub.tokens.add("hf_mine")
    monkeypatch.setenv("HF_TOKEN", "hf_mine")
    fakehub.drop_after[Q4] = 900_000
    expired = []

    def expire_once(p):
        if p.state == "downloading" and not expired:
            expired.append(True)
            fakehub.expire_cdn_urls()     # the URL in hand is now refused with 403
    path = hub.download_file(GGUF_REPO, Q4, progress=expire_once)
    assert path.read_bytes() == gguf_files[Q4]
    cdn = fakehub.cdn_requests
    assert not any(auth for _, _, auth in cdn)                  # the token never left the hub
    assert [r for _, r, _ in cdn] == [None, "bytes=900000-", "bytes=900000-"]   # 403, then renewed
    heads = [r for r in fakehub.requests if r[0] == "HEAD" and "/resolve/" in r[1]]
    assert len(heads) == 2 and fakehub.repos[GGUF_REPO].sha in heads[1][1]    # renewal pinned to the commit
    # the remote header reader follows the same redirect with its Range requests
    from quantdesk.core.hub.remote_gguf import read_remote_header
    head = read_remote_header(GGUF_REPO, "tiny-llama.Q8_0.gguf")
    assert head.file_type == "Q8_0" and cdn[-1][1].startswith("bytes=0-")
