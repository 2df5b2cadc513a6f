"""`quantdesk serve --rpc`: layers on a worker; the worker dies, the server stays up and the next
load goes on without it."""
from __future__ import annotations

import json

import pytest

from server.server_process import STARTER_ID, Server

pytestmark = pytest.mark.slow


def ask(server: Server) -> tuple[int, dict]:
    body = {"model": STARTER_ID, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    return server.request("/v1/chat/completions", json.dumps(body).encode(),
                          {"Content-Type": "application/json"})


def test_serve_uses_the_worker_and_outlives_it(tmp_path, start_worker):
    worker = start_worker()
    server = Server(tmp_path / "home", "--rpc", worker.endpoint)
    try:
        status, reply = ask(server)
        on_worker = reply["choices"][0]["message"]["content"]
        assert status == 200 and on_worker
        [loaded] = server.loaded()
        assert loaded["note"] == "split over 1 worker(s): full-gpu"
        assert loaded["gpu_layers"] == 31            # every layer on the worker
        worker.kill()
        status, reply = ask(server)                  # the host dies with its worker
        assert status >= 500
        message = reply["error"]["message"]
        assert f"worker {worker.endpoint} stopped answering" in message and "\n" not in message
        status, reply = ask(server)                  # the next load goes on without it
        assert status == 200 and reply["choices"][0]["message"]["content"] == on_worker
        [loaded] = server.loaded()
        assert loaded["note"].startswith(f"left out: worker {worker.endpoint} is not reachable")
        assert loaded["gpu_layers"] == 0
    finally:
        assert server.stop() == 0
