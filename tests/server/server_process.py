"""The API server under test: `quantdesk serve` in a subprocess, on a free 127.0.0.1 port, over
a library of just the starter model (an empty HF cache, a temporary QUANTDESK_HOME)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

STARTER_ID = "SmolLM2-135M-Instruct.Q4_1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path, *args: str):
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root + "/v1"
        self.log = home / "serve.log"
        (home / "hf").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "QUANTDESK_HOME": str(home), "HF_HUB_CACHE": str(home / "hf"),
               "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quantdesk.core.cli", "serve", "--port", str(self.port),
             "--threads", "2", *args],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env)
        self._wait_up()

    def _wait_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited ({self.proc.returncode}):\n{self.output()}")
            try:
                if self.get("/health")["status"] == "ok":
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the server did not answer within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def request(self, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, parsed JSON body) through the standard library (no client's own checks)."""
        req = urllib.request.Request(self.root + path, data=body, headers=headers or {},
                                     method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def get(self, path: str) -> dict:
        return self.request(path)[1]

    def loaded(self) -> list[dict]:
        return self.get("/quantdesk/loaded")["data"]

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)   # what Ctrl-C does
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


