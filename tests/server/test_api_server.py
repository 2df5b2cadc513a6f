"""The local API server end to end: `quantdesk serve` in a subprocess with the real starter
model, through the official openai and anthropic clients (and the standard library where a
client would refuse to send what we test)."""
from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time

import anthropic
import openai
import pytest

from .server_process import STARTER_ID, Server

HELLO = [{"role": "user", "content": "Say hello."}]


def chat(client, **kw):
    args = dict(model=STARTER_ID, messages=HELLO, max_tokens=6, temperature=0, seed=1)
    return client.chat.completions.create(**{**args, **kw})


def streamed_text(stream) -> tuple[str, list]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


# ---- OpenAI ---------------------------------------------------------------------------------------
def test_models_lists_library_ids_with_context_and_quant(openai_client):
    models = {m.id: m for m in openai_client.models.list()}
    assert list(models) == [STARTER_ID]
    extra = models[STARTER_ID].model_extra
    assert extra["quant"] == "Q4_1" and extra["context_length"] == 8192
    assert openai_client.models.retrieve(STARTER_ID.lower()).id == STARTER_ID


def test_chat_reply_usage_and_the_same_reply_streamed(openai_client):
    reply = chat(openai_client)
    text = reply.choices[0].message.content
    assert reply.model == STARTER_ID and reply.choices[0].message.role == "assistant"
    assert text.strip()
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 6
    assert reply.usage.prompt_tokens > 5
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 6

    text2, chunks = streamed_text(chat(openai_client, stream=True,
                                       stream_options={"include_usage": True}))
    assert text2 == text                       # greedy: the stream says exactly the same
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])


def test_max_completion_tokens_and_a_stop_string(openai_client):
    reply = chat(openai_client, max_tokens=None, max_completion_tokens=3)
    assert reply.usage.completion_tokens == 3
    full = openai_client.completions.create(model=STARTER_ID, prompt="The capital of France is",
                                            max_tokens=6, temperature=0)
    text = full.choices[0].text
    assert "Paris" in text and "." in text     # what the model says here, greedily
    cut = openai_client.completions.create(model=STARTER_ID, prompt="The capital of France is",
                                           max_tokens=6, temperature=0, stop=["."])
    assert cut.choices[0].text == text.split(".")[0]
    assert cut.choices[0].finish_reason == "stop"


def test_errors_come_in_openai_shape(openai_client, server):
    with pytest.raises(openai.NotFoundError) as e:
        chat(openai_client, model="no-such-model")
    assert e.value.code == "model_not_found" and "no-such-model" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        chat(openai_client, temperature=5)
    assert e.value.param == "temperature"
    with pytest.raises(openai.BadRequestError):
        chat(openai_client, messages=[])
    with pytest.raises(openai.BadRequestError) as e:
        chat(openai_client, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}])
    # images are read, but only by a model loaded with a vision projector (test_image_api.py)
    assert "without a vision projector (mmproj)" in e.value.message
    status, body = server.request("/v1/chat/completions", b"{not json",
                                  {"Content-Type": "application/json"})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    # A body over the limit is refused from its declared length, before it is read.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/v1/chat/completions")
    conn.putheader("Content-Length", str(5 * 1024 * 1024))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and "limit" in json.loads(r.read())["error"]["message"]
    conn.close()


def test_a_prompt_longer_than_the_context_is_a_400_not_a_truncation(openai_client):
    long = [{"role": "user", "content": "apple " * 700}]   # > 512 tokens
    with pytest.raises(openai.BadRequestError) as e:
        chat(openai_client, messages=long)
    assert e.value.code == "context_length_exceeded"
    assert "does not fit the context size (512)" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:   # streamed: a status, not a broken stream
        list(chat(openai_client, messages=long, stream=True))
    assert e.value.code == "context_length_exceeded"


# ---- Anthropic ------------------------------------------------------------------------------------
def test_anthropic_messages_plain_and_streamed(anthropic_client, openai_client):
    greedy = {"temperature": 0}   # this client version has no temperature argument
    msg = anthropic_client.messages.create(model=STARTER_ID, max_tokens=6, extra_body=greedy,
                                           system="You are brief.", messages=HELLO)
    assert msg.type == "message" and msg.role == "assistant" and msg.model == STARTER_ID
    assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 6
    text = msg.content[0].text
    assert text.strip()
    with anthropic_client.messages.stream(model=STARTER_ID, max_tokens=6, extra_body=greedy,
                                          system="You are brief.", messages=HELLO) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 6
    # the same conversation through the OpenAI door gives the same words
    same = chat(openai_client, messages=[{"role": "system", "content": "You are brief."}, *HELLO])
    assert same.choices[0].message.content == text


def test_anthropic_errors_come_in_anthropic_shape(anthropic_client, server):
    with pytest.raises(anthropic.NotFoundError) as e:
        anthropic_client.messages.create(model="nope", max_tokens=5, messages=HELLO)
    assert e.value.body["error"]["type"] == "not_found_error"
    status, body = server.request("/v1/messages", json.dumps(
        {"model": STARTER_ID, "messages": HELLO}).encode())   # max_tokens is required
    assert status == 400
    assert body == {"type": "error", "error": {"type": "invalid_request_error",
                                               "message": "max_tokens: Field required"}}


# ---- the runtime side -----------------------------------------------------------------------------
def test_a_client_that_disconnects_leaves_the_host_idle_within_a_second(openai_client, server):
    stream = chat(openai_client, max_tokens=400, stream=True,
                  messages=[{"role": "user", "content": "Write a long story about a cat."}])
    it = iter(stream)
    for _ in range(3):
        next(it)
    assert [m["busy"] for m in server.loaded()] == [True]
    stream.close()
    gone = time.monotonic()
    while server.loaded()[0]["busy"]:
        assert time.monotonic() - gone < 1.0, "the host still generates for a gone client"
        time.sleep(0.02)


@pytest.mark.slow
def test_eight_concurrent_streaming_clients_all_get_the_right_reply(openai_client):
    expected = chat(openai_client, max_tokens=4).choices[0].message.content
    results, errors = [None] * 8, []

    def one(i: int) -> None:
        try:
            results[i] = streamed_text(chat(openai_client, max_tokens=4, stream=True))[0]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert results == [expected] * 8


def test_requests_for_one_model_are_served_in_arrival_order(openai_client, server):
    finished: list[int] = []

    def one(i: int, tokens: int) -> None:
        chat(openai_client, max_tokens=tokens)
        finished.append(i)
    first = threading.Thread(target=one, args=(0, 24))   # holds the model while the rest queue
    first.start()
    while not (server.loaded() and server.loaded()[0]["busy"]):
        time.sleep(0.02)
    rest = []
    for i in range(1, 5):
        rest.append(threading.Thread(target=one, args=(i, 1)))
        rest[-1].start()
        time.sleep(0.15)   # arrival order 1, 2, 3, 4
    for t in [first, *rest]:
        t.join(120)
    assert finished == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_a_killed_host_fails_its_request_and_the_server_goes_on(openai_client, server):
    stream = chat(openai_client, max_tokens=400, stream=True,
                  messages=[{"role": "user", "content": "Write a long story about a dog."}])
    it = iter(stream)
    next(it)
    (host,) = server.loaded()
    os.kill(host["pid"], signal.SIGKILL)
    with pytest.raises(openai.APIError) as e:
        for _ in it:
            pass
    assert "exited unexpectedly" in str(e.value.message)
    assert server.get("/health") == {"status": "ok"}
    reply = chat(openai_client)            # a fresh host
    assert reply.usage.completion_tokens == 6
    assert server.loaded()[0]["pid"] != host["pid"]
    assert "error: " + STARTER_ID in server.output()   # its log line says what happened


# ---- security and lifecycle: servers of their own -------------------------------------------------
def test_api_key_is_required_when_set_and_cors_only_for_allowed_origins(tmp_path, server):
    srv = Server(tmp_path, "--api-key", "s3cret", "--cors", "http://allowed.example")
    try:
        preflight = {"Origin": "http://allowed.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"}
        status, headers = options(srv, preflight)   # answered without the key, as browsers ask
        assert status == 200
        assert headers["access-control-allow-origin"] == "http://allowed.example"
        status, headers = options(srv, {**preflight, "Origin": "http://evil.example"})
        assert status == 400 and "access-control-allow-origin" not in headers
        _, headers = options(server, preflight)      # the default: no CORS at all
        assert "access-control-allow-origin" not in headers
        with pytest.raises(openai.AuthenticationError) as e:
            openai.OpenAI(base_url=srv.base_url, api_key="wrong", max_retries=0).models.list()
        assert e.value.code == "invalid_api_key"
        with pytest.raises(anthropic.AuthenticationError) as e:
            anthropic.Anthropic(base_url=srv.root, api_key="wrong", max_retries=0
                                ).messages.create(model=STARTER_ID, max_tokens=1, messages=HELLO)
        assert e.value.body["error"]["type"] == "authentication_error"
        good = openai.OpenAI(base_url=srv.base_url, api_key="s3cret", max_retries=0)
        assert [m.id for m in good.models.list()] == [STARTER_ID]
        status, _ = srv.request("/v1/models", headers={"x-api-key": "s3cret"})
        assert status == 200
        assert srv.request("/v1/models")[0] == 401
        assert srv.get("/health") == {"status": "ok"}   # says only that it is up
    finally:
        srv.stop()


def options(srv, headers: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("OPTIONS", "/v1/chat/completions", headers=headers)
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}


def test_a_lan_address_needs_a_key(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "serve", "--host", "0.0.0.0"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "QUANTDESK_HOME": str(tmp_path),
                            "QUANTDESK_API_KEY": ""})
    assert r.returncode == 2
    assert "give an API key" in r.stderr


def test_a_port_in_use_is_said_in_one_line(tmp_path):
    import socket
    import subprocess
    import sys
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "serve", "--port",
                            str(port)], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "QUANTDESK_HOME": str(tmp_path)})
    assert r.returncode == 1
    assert f"quantdesk: could not listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_idle_unload_after_the_ttl_and_ctrl_c_ends_everything(tmp_path, starter_model):
    import psutil
    srv = Server(tmp_path, "--ttl", "1", "--ctx", "256")
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=120)
        chat(client, max_tokens=2)
        (host,) = srv.loaded()
        deadline = time.monotonic() + 10
        while srv.loaded():
            assert time.monotonic() < deadline, "the idle model was not unloaded"
            time.sleep(0.1)
        while psutil.pid_exists(host["pid"]):   # unloading ends the host process
            assert time.monotonic() < deadline + 3, "the unloaded model's process lives on"
            time.sleep(0.1)
        chat(client, max_tokens=2)            # loads again on the next request
        (host,) = srv.loaded()
    finally:
        code = srv.stop()
    assert code == 0
    assert "quantdesk: stopped" in srv.output()
    assert not psutil.pid_exists(host["pid"])
    lines = [ln for ln in srv.output().splitlines() if "/v1/chat/completions" in ln]
    assert len(lines) == 2 and all(" 200 " in ln and "+2 tokens" in ln for ln in lines)


# ---- structured output and tools (a grammar from a JSON schema) -----------------------------------
PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                          "age": {"type": "integer"}},
          "required": ["name", "age"]}
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                   "required": ["city"]}}}]
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_json_schema_output_parses_and_follows_the_schema(openai_client):
    reply = chat(openai_client, max_tokens=60, messages=[
        {"role": "user", "content": "Invent a person. Give name and age as JSON."}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "person", "schema": PERSON}})
    data = json.loads(reply.choices[0].message.content)
    assert set(data) == {"name", "age"}
    assert isinstance(data["name"], str) and len(data["name"]) <= 12
    assert isinstance(data["age"], int)
    with pytest.raises(openai.BadRequestError):   # a schema llama.cpp cannot follow
        chat(openai_client, response_format={"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "object", "properties": {
                "a": {"$ref": "#/definitions/missing"}}}}})


@pytest.mark.slow
def test_tool_calls_plain_and_streamed(openai_client):
    # one call per reply (parallel_tool_calls=False) keeps the starter model's reply short
    reply = chat(openai_client, max_tokens=60, messages=ASK_WEATHER, tools=WEATHER,
                 tool_choice="required", parallel_tool_calls=False)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls[:1]
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.id.startswith("call_")
    assert isinstance(json.loads(call.function.arguments)["city"], str)

    chunks = list(chat(openai_client, max_tokens=60, messages=ASK_WEATHER, tools=WEATHER,
                       tool_choice={"type": "function", "function": {"name": "get_weather"}},
                       parallel_tool_calls=False, stream=True))
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    first = deltas[0]
    assert first.index == 0 and first.id.startswith("call_") and first.type == "function"
    assert first.function.name == "get_weather"
    indexes = sorted({d.index for d in deltas})
    assert indexes == list(range(len(indexes)))
    args = "".join(d.function.arguments or "" for d in deltas if d.index == 0)
    assert isinstance(json.loads(args)["city"], str)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # the call and its result go back into the conversation; tool_choice none answers in text
    history = ASK_WEATHER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {
                "name": "get_weather", "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"}]
    text = chat(openai_client, max_tokens=6, messages=history, tools=WEATHER,
                tool_choice="none")
    assert text.choices[0].message.content and not text.choices[0].message.tool_calls


@pytest.mark.slow
def test_anthropic_tool_use_plain_and_streamed(anthropic_client):
    weather = [{"name": "get_weather", "description": "Current weather of a city",
                "input_schema": WEATHER[0]["function"]["parameters"]}]
    only = {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    msg = anthropic_client.messages.create(model=STARTER_ID, max_tokens=60, tools=weather,
                                           tool_choice=only, messages=ASK_WEATHER,
                                           extra_body={"temperature": 0})
    assert msg.stop_reason == "tool_use"
    (use,) = msg.content
    assert use.type == "tool_use" and use.name == "get_weather" and use.id.startswith("toolu_")
    assert isinstance(use.input["city"], str)
    with anthropic_client.messages.stream(model=STARTER_ID, max_tokens=60, tools=weather,
                                          tool_choice=only, messages=ASK_WEATHER,
                                          extra_body={"temperature": 0}) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == use.input

    reply = anthropic_client.messages.create(
        model=STARTER_ID, max_tokens=5, tools=weather, tool_choice={"type": "none"},
        extra_body={"temperature": 0},
        messages=ASK_WEATHER + [
            {"role": "assistant", "content": [{"type": "tool_use", "id": use.id,
                                               "name": use.name, "input": use.input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                          "content": "Sunny, 21 C"}]}])
    assert reply.content[0].type == "text" and reply.content[0].text


# ---- embeddings (a host loaded for them: last, so the chat host is not reloaded in between) ---
def test_embeddings_float_and_base64(openai_client):
    import math
    texts = ["The cat sat on the mat.", "Stock prices fell sharply.", "The cat sat on the mat."]
    out = openai_client.embeddings.create(model=STARTER_ID, input=texts,
                                          encoding_format="float")
    vectors = [d.embedding for d in out.data]
    assert [d.index for d in out.data] == [0, 1, 2]
    assert {len(v) for v in vectors} == {576}             # SmolLM2-135M's embedding width
    assert all(abs(math.hypot(*v) - 1) < 1e-4 for v in vectors)   # normalised
    # the same text, batched with others: equal up to float summation order
    assert max(abs(a - b) for a, b in zip(vectors[0], vectors[2])) < 1e-3
    assert max(abs(a - b) for a, b in zip(vectors[0], vectors[1])) > 1e-2
    assert out.usage.prompt_tokens > 10
    one = openai_client.embeddings.create(model=STARTER_ID, input=texts[0])   # base64
    assert max(abs(a - b) for a, b in zip(one.data[0].embedding, vectors[0])) < 1e-3
    with pytest.raises(openai.BadRequestError) as e:
        openai_client.embeddings.create(model=STARTER_ID, input="apple " * 700)
    assert e.value.code == "context_length_exceeded"
