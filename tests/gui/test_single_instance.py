"""Issue 14 item 2: one Quantdesk per user. A second launch (`quantdesk-gui FILE`, what a
double-click runs) hands its file to the running window over a local socket and exits 0; the
running window opens it. A socket left by a crashed instance does not block a new start. macOS
file-open events reach the running window too.

Real processes, as the OS starts them (offscreen, their own home, data and temp folders)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui


def persisted_paths() -> set[str]:
    from quantdesk.core.library import Library
    return {str(e.path) for e in Library().entries()}


@pytest.fixture
def app_env(home, tmp_path):
    """The environment of a launched app; its socket lives in a short private temp folder
    (a Unix socket path must stay under ~100 bytes)."""
    short_tmp = Path(tempfile.mkdtemp(prefix="qd-", dir="/tmp"))
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TMPDIR=str(short_tmp),
               HOME=str(tmp_path / "user"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_RUNTIME_DIR=str(runtime))
    from quantdesk.app.single_instance import server_name
    yield env, short_tmp / server_name()
    shutil.rmtree(short_tmp, ignore_errors=True)


def launch(env, *files):
    return subprocess.Popen([sys.executable, "-m", "quantdesk.app.main", *map(str, files)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, proc, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the app exited early: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def test_a_second_launch_hands_its_file_to_the_running_window(app_env, model_copy):
    env, socket_path = app_env
    first = launch(env)
    try:
        wait_for(socket_path.exists, first, "the first instance never listened")
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "quantdesk.app.main", str(model_copy)],
                                env=env, capture_output=True, text=True, timeout=60)
        print(f"second launch exited after {time.monotonic() - started:.1f} s")
        assert second.returncode == 0, second.stderr
        # The running window opened it (and saved it in its library), and still runs.
        wait_for(lambda: str(model_copy) in persisted_paths(), first,
                 "the running window did not open the handed-over file")
        assert first.poll() is None
    finally:
        stop(first)


def test_a_stale_socket_does_not_block_a_new_start(app_env, model_copy):
    env, socket_path = app_env
    # What a crashed instance leaves: the socket file, nobody accepting on it.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(socket_path))
    dead.close()
    assert socket_path.exists()
    proc = launch(env, model_copy)
    try:
        wait_for(lambda: str(model_copy) in persisted_paths(), proc,
                 "the new launch did not start its own window over the stale socket")
        # It now serves the name itself: a further launch hands over and exits 0.
        again = subprocess.run([sys.executable, "-m", "quantdesk.app.main"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        assert proc.poll() is None
    finally:
        stop(proc)


def test_macos_file_open_events_reach_the_running_window(window, qtbot, model_copy):
    from PySide6.QtGui import QFileOpenEvent
    from PySide6.QtWidgets import QApplication

    from quantdesk.app.single_instance import FileOpenFilter
    app = QApplication.instance()
    file_open = FileOpenFilter(window)
    app.installEventFilter(file_open)
    file_open.files_received.connect(window.open_from_elsewhere)
    try:
        window.show_page("Quality")
        with qtbot.waitSignal(window.library.opened, timeout=20000) as opened:
            QApplication.sendEvent(app, QFileOpenEvent(str(model_copy)))
        assert Path(opened.args[0].path) == model_copy
        assert window.current_page() == "Library" and str(model_copy) in persisted_paths()
    finally:
        app.removeEventFilter(file_open)
