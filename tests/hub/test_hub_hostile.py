"""A hostile hub (HF_ENDPOINT) cannot make a download write outside the cache.

The server's ETag, X-Repo-Commit and file names are joined into cache paths; each test serves one
hostile value through the real huggingface_hub client and checks that `quantdesk pull` (and the
window's DownloadManager) refuses in one line, writes nothing anywhere under the temporary root
that holds the cache, and leaves the user's cached files as they were.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from quantdesk.core import hub
from quantdesk.core.cli import main
from quantdesk.core.hub.cache_layout import relative_name_problem
from quantdesk.core.hub.manager import DownloadManager

from .conftest import GGUF_REPO

Q4, Q8 = "tiny-llama.Q4_K_M.gguf", "tiny-llama.Q8_0.gguf"
EVIL_REPO = "evil-org/Evil-GGUF"


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry under root (symlinks not followed) -> what it is and holds."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if path.is_symlink():
                out[str(path)] = ("link", os.readlink(path))
            elif path.is_dir():
                out[str(path)] = ("dir",)
            else:
                out[str(path)] = ("file", st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


@pytest.fixture
def cached(hub_env, fakehub, tmp_path):
    """The user's cache already holds Q4_K_M; returns the tree of the whole temporary root."""
    hub.download_file(GGUF_REPO, Q4)
    (tmp_path / "outside.txt").write_text("the user's own file")   # a neighbour of the cache
    return _tree(tmp_path)


def _pull(capsys, *args) -> tuple[int, str]:
    rc = main(["pull", *args])
    return rc, capsys.readouterr().err


def _assert_refused(rc, err, tmp_path, before, *words):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quantdesk: refusing to download"), err
    assert all(w in lines[0] for w in words), lines[0]
    assert _tree(tmp_path) == before        # nothing new, changed or removed anywhere, cache included


@pytest.mark.parametrize("etag", ['"../../../../escape"', 'W/"../../../../escape"', '"{abs}/escape"',
                                  '"blobs/../../x"', '"abc"'])
def test_a_hostile_etag_is_refused(hub_env, fakehub, tmp_path, cached, capsys, etag):
    etag = etag.format(abs=tmp_path)
    fakehub.headers[Q8] = {"ETag": etag, "X-Linked-Etag": etag}
    rc, err = _pull(capsys, GGUF_REPO, "--quant", "Q8_0")
    _assert_refused(rc, err, tmp_path, cached, "ETag", "not a hub file hash")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "escape.lock").exists()


@pytest.mark.parametrize("commit", ["../../../../escape", "{abs}/escape", "A" * 40, "0" * 39, "main"])
def test_a_hostile_commit_is_refused(hub_env, fakehub, tmp_path, cached, capsys, commit):
    fakehub.headers[Q8] = {"X-Repo-Commit": commit.format(abs=tmp_path)}
    rc, err = _pull(capsys, GGUF_REPO, "--quant", "Q8_0")
    _assert_refused(rc, err, tmp_path, cached, "X-Repo-Commit", "40-digit commit")


@pytest.mark.parametrize("name", ["../../../../escape.Q8_0.gguf", "{abs}/escape.Q8_0.gguf",
                                  "sub\\..\\..\\escape.Q8_0.gguf", "C:escape.Q8_0.gguf",
                                  "bad\x1b[2Jname.Q8_0.gguf", "sub//escape.Q8_0.gguf"])
def test_a_hostile_file_name_is_refused_before_any_request(hub_env, fakehub, tmp_path, cached, capsys,
                                                           gguf_files, name):
    name = name.format(abs=tmp_path)
    fakehub.add_repo(EVIL_REPO, {name: gguf_files[Q8]}, tags=["gguf"])
    asked = len(fakehub.requests)
    rc, err = _pull(capsys, EVIL_REPO)
    _assert_refused(rc, err, tmp_path, cached, "the file name has")
    assert "\x1b" not in err
    assert [r[0] for r in fakehub.requests[asked:]] == ["GET"]   # the listing only: no HEAD, no download


def test_the_window_s_download_manager_refuses_in_one_line(hub_env, fakehub, tmp_path, cached):
    fakehub.headers[Q8] = {"ETag": '"../../../../escape"', "X-Linked-Etag": '"../../../../escape"'}
    state = tmp_path / "tasks" / "downloads.json"     # the task list is the only thing written
    manager = DownloadManager(state)
    task = manager.add(GGUF_REPO, Q8)
    final = manager.wait(task.id, timeout=60)
    assert final.state == "failed" and "\n" not in final.error and "not a hub file hash" in final.error
    assert final.etag is None
    after = {k: v for k, v in _tree(tmp_path).items() if not k.startswith(str(state.parent))}
    assert after == cached


def test_a_hand_edited_task_list_cannot_point_a_cancel_outside_the_cache(hub_env, tmp_path):
    victim = tmp_path / "victim.incomplete"
    victim.write_text("keep me")
    state = tmp_path / "downloads.json"
    blobs = hub.download.storage_folder(GGUF_REPO) / "blobs"
    blobs.mkdir(parents=True)                      # the user's cache exists, so `..` walks out of it
    etag = os.path.relpath(victim, blobs).removesuffix(".incomplete")
    state.write_text('{"tasks": [{"id": "x", "repo_id": "%s", "filename": "%s", "state": "paused", "etag": "%s"}]}'
                     % (GGUF_REPO, Q8, etag))
    manager = DownloadManager(state)
    manager.cancel("x")
    assert victim.read_text() == "keep me" and manager.get("x").state == "cancelled"


def test_the_hub_s_own_etag_forms_still_download(hub_env, fakehub, gguf_files):
    """Weak and quoted ETags, sha256 (LFS) and git sha1 (small files) are the hub's forms."""
    sha = hashlib.sha256(gguf_files[Q8]).hexdigest()
    fakehub.headers[Q8] = {"ETag": f'W/"{sha}"', "X-Linked-Etag": f'W/"{sha}"'}
    assert hub.download_file(GGUF_REPO, Q8).read_bytes() == gguf_files[Q8]
    readme = hub.download_file(GGUF_REPO, "README.md")
    assert len(os.path.basename(os.path.realpath(readme))) == 40   # the git blob sha1


@pytest.mark.parametrize("name,problem", [
    ("a/../b.gguf", "'..'"), ("/etc/passwd", "absolute"), ("C:\\x.gguf", "backslash"), ("D:x.gguf", "drive"),
    ("\\\\host\\share\\x", "backslash"), ("a\x00b", "control"), ("a\nb", "control"), ("", "empty"),
    ("./a", "'.'"), ("a//b", "empty"), ("x" * 256, "255 bytes"), ("a/b:stream", "drive"),
])
def test_unsafe_names(name, problem):
    assert problem in relative_name_problem(name)


@pytest.mark.parametrize("name", ["model.Q4_K_M.gguf", "sub/dir/m-00001-of-00002.gguf", "refs/pr/1",
                                  "with space é.gguf", "..hidden", "a..b.gguf"])
def test_safe_names(name):
    assert relative_name_problem(name) is None
