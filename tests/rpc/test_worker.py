"""`quantdesk worker`: bind rules, what it advertises, clean stop."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from quantdesk.core.rpc.wire import probe

from .conftest import free_port

MiB = 1 << 20


def test_refuses_to_listen_beyond_loopback_without_the_flag(tmp_path):
    out = subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "worker", "--host",
                          "0.0.0.0", "--port", str(free_port())],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, QUANTDESK_HOME=str(tmp_path)))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no authentication" in lines[0] and "--allow-remote" in lines[0]
    assert out.stdout == ""


def test_port_in_use_is_one_line(tmp_path, start_worker):
    w = start_worker()
    out = subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "worker", "--port",
                          str(w.port)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, QUANTDESK_HOME=str(tmp_path)))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "is another worker using the port?" in out.stderr


@pytest.mark.slow
def test_advertises_its_mem_limit_as_ggml_reads_it(start_worker):
    w = start_worker("--mem", "300")
    mine = probe(w.endpoint)
    assert mine.version[0] == 7 and mine.devices[0][1] == 300 * MiB
    assert 0 < mine.devices[0][0] <= 300 * MiB
    assert any("offers" in line and "(--mem)" in line for line in w.stdout)
    # ggml's own client reads the same figures (in a child: it aborts on any failure)
    code = ("import ctypes, json, sys; from quantdesk.core.rpc import ggml_lib as g; "
            "f, t = ctypes.c_size_t(), ctypes.c_size_t(); "
            "g.fn('ggml_backend_rpc_get_device_memory')(sys.argv[1].encode(), 0, "
            "ctypes.byref(f), ctypes.byref(t)); print(json.dumps([f.value, t.value]))")
    out = subprocess.run([sys.executable, "-c", code, w.endpoint], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    free, total = json.loads(out.stdout.strip().splitlines()[-1])
    assert total == 300 * MiB and abs(free - mine.devices[0][0]) < 16 * MiB


@pytest.mark.slow
def test_listening_beyond_loopback_warns_and_stops_cleanly(start_worker):
    w = start_worker("--host", "0.0.0.0", "--allow-remote")
    assert probe(f"127.0.0.1:{w.port}").devices
    assert w.stop() == 0
    assert "worker stopped" in "".join(w.stdout)
    err = w.proc.stderr.read()
    assert "WARNING" in err and "no authentication" in err


@pytest.mark.slow
def test_cache_keeps_large_tensors_for_the_next_load(start_worker, starter_model, tmp_path):
    from quantdesk.core.runtime import LoadRequest, ModelManager
    w = start_worker("--cache")
    cache = tmp_path / "worker-home" / "rpc-cache"
    assert any(f"tensor cache: {cache}" in line for line in w.stdout)
    assert list(cache.iterdir()) == []
    models = ModelManager()
    try:
        models.load(LoadRequest(str(starter_model), n_ctx=512, gpu_layers="all", n_threads=1,
                                rpc_servers=(w.endpoint,)))
    finally:
        models.shutdown()
    # llama.cpp sends tensors over 10 MiB by hash first; the worker stored the (tied) output
    # matrix, 17 MiB, under its hash
    stored = list(cache.iterdir())
    assert stored and all(f.stat().st_size > 10 * MiB for f in stored)
