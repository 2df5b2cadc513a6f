"""The download manager: parallel tasks, pause/resume across a restart, cancel, gated failures."""
from __future__ import annotations

import threading

from quantdesk.core.hub.manager import DownloadManager

from .conftest import GATED_REPO, GGUF_REPO

Q4, Q8 = "tiny-llama.Q4_K_M.gguf", "tiny-llama.Q8_0.gguf"


def test_two_downloads_report_progress_and_finish(hub_env, fakehub, gguf_files, tmp_path):
    updates = []
    m = DownloadManager(tmp_path / "downloads.json", on_update=updates.append)
    a, b = m.add(GGUF_REPO, Q4), m.add(GGUF_REPO, Q8)
    for t in (a, b):
        done = m.wait(t.id, timeout=60)
        assert done.state == "done", done.error
        assert open(done.path, "rb").read() == gguf_files[done.filename]
    states = [(u.filename, u.state) for u in updates]
    assert (Q8, "running") in states and (Q8, "done") in states
    assert any(u.phase == "downloading" and 0 < u.done_bytes for u in updates)
    # state is on disk: a new manager lists both as done
    assert {t.state for t in DownloadManager(tmp_path / "downloads.json").tasks()} == {"done"}


def test_pause_survives_a_restart_and_resumes(hub_env, fakehub, gguf_files, tmp_path):
    fakehub.delay = 0.005
    paused = threading.Event()
    m = None

    def on_update(task):
        if task.phase == "downloading" and task.done_bytes > 0 and not paused.is_set():
            paused.set()
            m.pause(task.id)
    m = DownloadManager(tmp_path / "downloads.json", on_update=on_update)
    tid = m.add(GGUF_REPO, Q8).id
    first = m.wait(tid, timeout=60)
    assert first.state == "paused" and 0 < first.done_bytes < len(gguf_files[Q8])
    fakehub.delay = 0.0
    # the app restarts: a new manager reads the task list and finds the partial bytes
    m2 = DownloadManager(tmp_path / "downloads.json")
    (task,) = m2.tasks()
    assert task.state == "paused" and task.done_bytes >= first.done_bytes
    kept = task.done_bytes
    m2.resume(tid)
    final = m2.wait(tid, timeout=60)
    assert final.state == "done" and open(final.path, "rb").read() == gguf_files[Q8]
    assert fakehub.resolve_requests(Q8)[-1][2] == f"bytes={kept}-"


def test_cancel_a_paused_task_deletes_its_partial(hub_env, fakehub, tmp_path):
    fakehub.delay = 0.005
    m = None

    def on_update(task):
        if task.phase == "downloading" and task.done_bytes > 0:
            m.pause(task.id)
    m = DownloadManager(tmp_path / "d.json", on_update=on_update)
    tid = m.add(GGUF_REPO, Q8).id
    assert m.wait(tid, timeout=60).state == "paused"
    from quantdesk.core.hub.download import storage_folder
    assert list(storage_folder(GGUF_REPO).glob("blobs/*.incomplete"))
    m.cancel(tid)
    assert m.get(tid).state == "cancelled"
    assert not list(storage_folder(GGUF_REPO).glob("blobs/*.incomplete"))


def test_gated_task_fails_asking_for_a_token(hub_env, fakehub, tmp_path):
    m = DownloadManager(tmp_path / "d.json")
    task = m.wait(m.add(GATED_REPO, "secret.Q8_0.gguf").id, timeout=60)
    assert task.state == "failed" and task.needs_token and "token" in task.error and "\n" not in task.error


def test_an_unreadable_download_list_is_set_aside_not_fatal(tmp_path):
    from quantdesk.core.hub.manager import DownloadManager
    state = tmp_path / "downloads.json"
    for bad in ('[1, 2, 3]', '{"tasks": [{"repo_id": "x"}]}', '{not json'):
        state.write_text(bad)
        manager = DownloadManager(state)
        assert manager.tasks() == [] and "could not be read" in manager.warning
        assert not state.exists()
        assert (tmp_path / "downloads.json.unreadable").read_text() == bad
