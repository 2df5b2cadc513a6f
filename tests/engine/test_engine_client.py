"""The inference host process with real models: load, generate, cancel, crash, unload.

One client is shared by the module (model loads are the slow part on these machines); each test
makes sure the model it needs is loaded, so any test may also run alone.
"""
from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest

from quantdesk.core.engine import Done, EngineClient, EngineError, SamplingParams, Token

pytestmark = pytest.mark.slow

GREEDY = SamplingParams(temperature=0.0, max_tokens=48, seed=1)
PARIS = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


@pytest.fixture(scope="module")
def client():
    c = EngineClient()
    yield c
    c.shutdown()


# One thread: on a busy 2-core CI machine llama.cpp's spinning thread pool slows to a crawl.
THREADS = 1


def ensure_loaded(client: EngineClient, path) -> None:
    if client.loaded is None or client.loaded.path != str(path):
        client.load(path, n_ctx=1024, n_threads=THREADS)


def collect(events) -> tuple[str, Done]:
    tokens, done = [], None
    for event in events:
        if isinstance(event, Token):
            assert done is None, "tokens after Done"
            tokens.append(event.text)
        else:
            done = event
    assert isinstance(done, Done)
    return "".join(tokens), done


def test_load_runs_in_a_separate_process(client, starter_model):
    assert client.loaded is None and client.host_pid is None
    result = client.load(starter_model, n_ctx=1024, n_threads=THREADS)
    assert client.loaded == result
    assert client.host_pid not in (None, os.getpid())
    assert psutil.Process(client.host_pid).is_running()
    assert result.path == str(starter_model)
    assert result.n_ctx == 1024 and result.n_ctx_train >= 2048
    assert result.has_chat_template is True and result.n_threads == THREADS
    assert result.load_seconds > 0
    assert result.rss_after > result.rss_before > 0
    assert "llama_cpp" not in __import__("sys").modules  # this process never loads llama.cpp


def test_greedy_reply_mentions_paris(client, starter_model):
    ensure_loaded(client, starter_model)
    text, done = collect(client.generate(PARIS, GREEDY))
    assert "Paris" in text
    assert done.used_chat_template is True
    assert done.finish_reason in ("stop", "length")
    assert 0 < done.completion_tokens <= GREEDY.max_tokens
    assert done.prompt_tokens > 10            # the template wraps the question in role markers
    assert done.tokens_per_second > 0 and done.n_ctx == 1024
    # Greedy is deterministic: the same question gives the same reply.
    assert collect(client.generate(PARIS, GREEDY))[0] == text


def test_cancel_stops_the_reply_and_the_next_one_works(client, starter_model):
    ensure_loaded(client, starter_model)
    long = SamplingParams(temperature=0.0, max_tokens=400)
    story = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
    received = []
    events = client.generate(story, long)
    for event in events:
        if isinstance(event, Token):
            received.append(event.text)
            if len(received) == 3:
                # From another thread, as the app's Stop button does.
                threading.Thread(target=client.cancel).start()
        else:
            done = event
    assert done.finish_reason == "cancelled"
    assert 3 <= done.completion_tokens < long.max_tokens
    assert done.completion_tokens < 100       # honoured between tokens, not at the end

    # A consumer that stops reading early must not leave tokens behind for the next reply.
    partial = client.generate(story, long)
    assert isinstance(next(partial), Token)
    partial.close()
    text, done = collect(client.generate(PARIS, GREEDY))
    assert "Paris" in text and done.finish_reason in ("stop", "length")


def test_model_without_template_uses_plain_completion(client, gemma_model):
    previous = client.host_pid
    ensure_loaded(client, gemma_model)
    assert client.loaded.has_chat_template is False
    if previous is not None:                  # a new model gets a fresh process
        assert client.host_pid != previous and not psutil.pid_exists(previous)
    text, done = collect(client.generate(PARIS, SamplingParams(temperature=0.0, max_tokens=24)))
    assert done.used_chat_template is False
    assert done.completion_tokens > 0 and text.strip()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_host_killed_mid_reply_is_reported_and_next_load_works(client, starter_model):
    ensure_loaded(client, starter_model)
    pid = client.host_pid
    story = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
    got = 0
    with pytest.raises(EngineError) as info:
        for event in client.generate(story, SamplingParams(temperature=0.0, max_tokens=400)):
            got += 1
            if got == 2:
                os.kill(pid, signal.SIGKILL)
    message = str(info.value)
    assert "exited unexpectedly" in message and "signal 9" in message and "\n" not in message
    assert client.loaded is None and client.host_pid is None
    with pytest.raises(EngineError, match="no model is loaded"):
        next(client.generate(PARIS, GREEDY))

    client.load(starter_model, n_ctx=1024, n_threads=THREADS)
    assert client.host_pid != pid
    text, _ = collect(client.generate(PARIS, GREEDY))
    assert "Paris" in text


def test_unload_ends_the_process(client, starter_model):
    ensure_loaded(client, starter_model)
    pid = client.host_pid
    client.unload()
    assert client.loaded is None and client.host_pid is None
    assert not psutil.pid_exists(pid)
    client.unload()                           # harmless when nothing is loaded


def test_bad_files_raise_one_line_engine_errors(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + os.urandom(4096))
    with EngineClient() as c:
        with pytest.raises(EngineError) as missing:
            c.load(tmp_path / "missing.gguf")
        assert c.host_pid is None             # nothing started for a missing file
        with pytest.raises(EngineError) as corrupt:
            c.load(junk)
        assert c.loaded is None
    for exc in (missing.value, corrupt.value):
        assert str(exc) and "\n" not in str(exc)
