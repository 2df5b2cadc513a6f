"""Workers on loopback for the tests: real `quantdesk worker` processes on free ports."""
from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerProcess:
    def __init__(self, home, *args: str):
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        env = dict(os.environ, QUANTDESK_HOME=str(home))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quantdesk.core.cli", "worker", "--port", str(self.port),
             "--threads", "1", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.stdout: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self, timeout: float = 120) -> "WorkerProcess":
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"worker exited: {self.proc.wait()} {self.proc.stderr.read()}")
            if "worker ready" in line:
                return self

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


@pytest.fixture
def start_worker(tmp_path):
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        w = WorkerProcess(tmp_path / "worker-home", *args)
        started.append(w)
        return w.wait_ready()
    yield start
    for w in started:
        w.kill()
