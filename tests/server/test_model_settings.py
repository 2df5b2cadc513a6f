"""Per-model load settings kept by the library (context, GPU layers, KV types, flash attention):
the store's rules, the `quantdesk model-settings` door, and the server loading with them."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import openai
import pytest

from quantdesk.core.runtime.model_settings import FILE, ModelSettings

from .server_process import STARTER_ID, Server


@pytest.fixture
def model_copy_path(tmp_path):
    """Another model file: the store keys entries by path (no model is read)."""
    path = tmp_path / "other.gguf"
    path.write_bytes(b"GGUF")
    return path


def test_settings_are_checked_stored_and_removed(tmp_path, starter_model):
    store = ModelSettings(tmp_path)
    assert store.get(starter_model) == {}
    assert store.update(starter_model, n_ctx=300, kv_type_k="Q8_0", kv_type_v="q8_0",
                        flash_attn="on") == {"n_ctx": 300, "kv_type_k": "q8_0",
                                             "kv_type_v": "q8_0", "flash_attn": "on"}
    with pytest.raises(ValueError, match="flash attention"):   # a quantized V needs it
        store.update(starter_model, flash_attn="off")
    with pytest.raises(ValueError, match="unknown model setting 'temperature'"):
        store.update(starter_model, temperature=0.2)
    assert ModelSettings(tmp_path).get(starter_model)["flash_attn"] == "on"   # unchanged
    assert store.update(starter_model, kv_type_v=None, flash_attn=None) == {
        "n_ctx": 300, "kv_type_k": "q8_0"}
    assert store.update(starter_model, n_ctx=None, kv_type_k=None) == {}
    assert json.loads((tmp_path / FILE).read_text()) == {}


def test_replace_reset_and_a_context_typed_as_text(tmp_path, starter_model, model_copy_path):
    store = ModelSettings(tmp_path)
    store.update(model_copy_path, n_ctx=900)
    store.update(starter_model, n_ctx=300, flash_attn="on")
    assert store.replace(starter_model, {"n_ctx": " 1024 ", "n_gpu_layers": "ALL"}) == {
        "n_ctx": 1024, "n_gpu_layers": "all"}                 # flash_attn left out: not set
    for bad, reason in (("abc", "whole number of tokens, got 'abc'"), ("0", "must be positive"),
                        (1.5, "whole number of tokens")):
        with pytest.raises(ValueError, match=reason):
            store.replace(starter_model, {"n_ctx": bad})
    assert store.get(starter_model) == {"n_ctx": 1024, "n_gpu_layers": "all"}   # unchanged
    store.reset(starter_model)
    assert json.loads((tmp_path / FILE).read_text()) == {
        os.path.normcase(os.path.abspath(model_copy_path)): {"n_ctx": 900}}


def test_an_unreadable_file_is_set_aside_not_overwritten(tmp_path, starter_model):
    (tmp_path / FILE).write_text("{not json")
    store = ModelSettings(tmp_path)
    assert store.get(starter_model) == {}
    assert "could not be read" in store.warning
    assert (tmp_path / (FILE + ".unreadable")).read_text() == "{not json"


@pytest.mark.slow
def test_the_server_loads_with_the_stored_settings_and_a_request_may_set_the_context(
        tmp_path, starter_model):
    env = {**os.environ, "QUANTDESK_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1"}
    cli = [sys.executable, "-m", "quantdesk.core.cli", "model-settings"]
    r = subprocess.run(cli + [STARTER_ID, "--ctx", "320", "--kv-type", "q8_0",
                              "--flash-attn", "on"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["settings"] == {"n_ctx": 320, "kv_type_k": "q8_0",
                                                "kv_type_v": "q8_0", "flash_attn": "on"}
    bad = subprocess.run(cli + [STARTER_ID, "--flash-attn", "off"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "flash attention" in bad.stderr
    assert "Traceback" not in bad.stderr

    srv = Server(tmp_path, "--ttl", "0", "--max-models", "1")
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=120)
        reply = client.chat.completions.create(model=STARTER_ID, max_tokens=3, temperature=0,
                                               messages=[{"role": "user", "content": "Hi"}])
        assert reply.usage.completion_tokens == 3
        (host,) = srv.loaded()
        assert (host["n_ctx"], host["kv_type_k"], host["kv_type_v"], host["flash_attn"]) == (
            320, "q8_0", "q8_0", "on")
        client.chat.completions.create(model=STARTER_ID, max_tokens=1, extra_body={"n_ctx": 400},
                                       messages=[{"role": "user", "content": "Hi"}])
        (host,) = srv.loaded()
        assert (host["n_ctx"], host["kv_type_k"]) == (400, "q8_0")   # the rest still stored
    finally:
        srv.stop()
