"""A model on two loopback workers: the same greedy reply as on this machine alone, and a worker
that dies mid-reply reported in one line with the client alive."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from quantdesk.core.engine import EngineError, SamplingParams, Token
from quantdesk.core.runtime import LoadRequest, ModelManager

pytestmark = pytest.mark.slow
PROMPT = "What is the capital of France? Answer in one sentence."


def chat_json(model, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "quantdesk.core.cli", "chat", str(model), "--prompt", PROMPT,
         "--temperature", "0", "--max-tokens", "32", "--ctx", "1024", "--threads", "1",
         "--json", *extra], capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_all_layers_on_two_workers_reply_like_local(starter_model, start_worker):
    a, b = start_worker(), start_worker()
    local = chat_json(starter_model, "--gpu-layers", "0")
    remote = chat_json(starter_model, "--gpu-layers", "all", "--rpc", f"{a.endpoint},{b.endpoint}")
    assert remote["text"] == local["text"] and "Paris" in local["text"]
    assert remote["completion_tokens"] == local["completion_tokens"]
    n = remote["plan"]["n_layer"] + 1
    assert local["gpu_layers"] == 0 and remote["gpu_layers"] == n
    assert remote["plan"]["workers"] == [a.endpoint, b.endpoint]
    placed = {p["endpoint"]: p for p in remote["placement"] if p["endpoint"]}
    assert set(placed) == {a.endpoint, b.endpoint}
    assert all(p["layers"] > 0 and p["model_bytes"] > 0 for p in placed.values())
    assert sum(p["layers"] for p in placed.values()) == n
    # the layers went where the plan said
    assert [placed[e]["layers"] for e in (a.endpoint, b.endpoint)] == \
        remote["plan"]["split"]["tensor_split"]


def test_worker_killed_mid_reply_is_one_line_and_the_next_load_goes_without_it(
        starter_model, start_worker):
    a, b = start_worker(), start_worker()
    models = ModelManager()
    try:
        request = LoadRequest(str(starter_model), n_ctx=1024, gpu_layers="all", n_threads=1,
                              rpc_servers=(a.endpoint, b.endpoint))
        host = models.load(request)
        assert host.resolved.workers == (a.endpoint, b.endpoint)
        params = SamplingParams(temperature=0, max_tokens=400)
        killed = threading.Event()
        with pytest.raises(EngineError) as info:
            for event in host.generate([{"role": "user", "content": "Tell me a long story."}],
                                       params):
                if isinstance(event, Token) and not killed.is_set():
                    b.kill()
                    killed.set()
        message = str(info.value)
        assert killed.is_set() and "\n" not in message
        assert f"worker {b.endpoint} stopped answering" in message
        # the next load of the same request goes on without the dead worker
        notes = []
        host = models.load(request, report=lambda e: notes.append(e))
        assert host.resolved.workers == (a.endpoint,)
        assert f"left out: worker {b.endpoint} is not reachable" in host.resolved.note
        text = "".join(e.text for e in host.generate([{"role": "user", "content": PROMPT}],
                                                     SamplingParams(temperature=0, max_tokens=16))
                       if isinstance(e, Token))
        assert "Paris" in text
        assert [p["endpoint"] for p in host.result.placement if p["endpoint"]] == [a.endpoint]
    finally:
        models.shutdown()
