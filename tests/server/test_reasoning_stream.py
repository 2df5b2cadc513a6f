"""The endpoints' wire format for a reply that reasons, answers and calls tools, on scripted token
streams (tags cut across tokens) that a small real model will not write: the real app under
uvicorn in this process, with the model pool replaced by a script, read through the official
clients. OpenAI: delta.reasoning_content chunks before the content, then the calls; Anthropic:
a thinking block (index 0), then the text block, then tool_use blocks."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest

from quantdesk.core.engine import reasoning
from quantdesk.core.engine.types import Done, Token
from quantdesk.core.server import ServerConfig, create_app
from quantdesk.core.server.catalog import ServedModel

from .server_process import free_port

QWEN3 = ServedModel("qwen3-like", Path("q.gguf"), "q", "Q4_0", 4096, 1, 0, "hermes",
                    reasoning.THINK, False)
R1 = ServedModel("r1-like", Path("r.gguf"), "r", "Q4_0", 4096, 1, 0, "generic",
                 reasoning.THINK, True)
PLAIN = ServedModel("plain", Path("p.gguf"), "p", "Q4_0", 4096, 1, 0, "generic")
ASK = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


class ScriptedGeneration:
    def __init__(self, pieces: list[str]):
        self.events = [Token(p) for p in pieces] + [Done(5, len(pieces), 1.0, "stop", True, 512)]

    async def start(self):
        return await self.next()

    async def next(self):
        return self.events.pop(0)

    def cancel(self) -> None:
        pass


class ScriptedPool:
    """What the endpoints use of server.pool.ModelPool: the reply is `script`."""
    manager = SimpleNamespace(loaded=lambda: [], shutdown=lambda: None)

    def __init__(self):
        self.script: list[str] = []
        self.params = None

    def load_request(self, model, n_ctx, embedding=False):
        return None

    def generation(self, load, messages, params, prompt=None, tools=None):
        self.params = params
        return ScriptedGeneration(self.script)


class Catalog:
    def models(self, fresh=False):
        return [QWEN3, R1, PLAIN]

    def find(self, name):
        return next((m for m in self.models() if m.id == name), None)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    import uvicorn
    port = free_port()
    app = create_app(ServerConfig(port=port), manager=ScriptedPool.manager, library=object())
    app.state.pool, app.state.catalog = ScriptedPool(), Catalog()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield SimpleNamespace(root=f"http://127.0.0.1:{port}", pool=app.state.pool)
    server.should_exit = True
    thread.join(10)


THOUGHT_THEN_CALL = ["<th", "ink>\n", "Paris is a city", ".\n</", "think", ">\n\n",
                     "Let me check.", "\n<tool", '_call>\n{"name": "get_weather", ',
                     '"arguments": {"city": "Paris"}}\n</tool_call>']


def test_openai_reasoning_then_content_then_calls(app_server):
    client = openai.OpenAI(base_url=app_server.root + "/v1", api_key="x", max_retries=0)
    app_server.pool.script = THOUGHT_THEN_CALL
    reply = client.chat.completions.create(model=QWEN3.id, messages=ASK, tools=WEATHER)
    message = reply.choices[0].message
    assert message.reasoning_content == "Paris is a city."
    assert message.content.strip() == "Let me check."   # (the newline before a call: kept)
    assert [c.function.name for c in message.tool_calls] == ["get_weather"]

    chunks = list(client.chat.completions.create(model=QWEN3.id, messages=ASK, tools=WEATHER,
                                                 stream=True))
    kinds = []
    for c in chunks:
        d = c.choices[0].delta
        kind = ("reasoning" if getattr(d, "reasoning_content", None) else
                "content" if d.content else "calls" if d.tool_calls else None)
        if kind and (not kinds or kinds[-1] != kind):
            kinds.append(kind)
    assert kinds == ["reasoning", "content", "calls"]
    assert "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                   for c in chunks) == "Paris is a city."
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_a_block_the_prompt_opened(app_server):
    client = openai.OpenAI(base_url=app_server.root + "/v1", api_key="x", max_retries=0)
    app_server.pool.script = ["Four", ", since 2+2", "=4.</th", "ink>", "\n\n4"]
    message = client.chat.completions.create(model=R1.id, messages=ASK).choices[0].message
    assert (message.reasoning_content, message.content) == ("Four, since 2+2=4.", "4")
    # response_format holds the reply to JSON: the grammar closes the opened block first
    app_server.pool.script = ["</think>\n\n", '{"a": 1}']
    message = client.chat.completions.create(model=R1.id, messages=ASK, response_format={
        "type": "json_object"}).choices[0].message
    assert app_server.pool.params.json_prefix == "</think>\n\n"
    assert message.content == '{"a": 1}' and getattr(message, "reasoning_content", None) is None
    # tools in the generic JSON shape (R1's template knows none), after the closed block
    app_server.pool.script = ["</think>", "\n\n", '{"tool_calls": [{"name": "get_weather", ',
                              '"arguments": {"city": "Paris"}}]}']
    choice = client.chat.completions.create(model=R1.id, messages=ASK, tools=WEATHER,
                                            tool_choice="required").choices[0]
    assert app_server.pool.params.json_prefix == "</think>\n\n"
    assert choice.message.content is None and choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    # a model without reasoning markers: nothing is split, whatever it writes
    app_server.pool.script = ["<think>x</think>y"]
    message = client.chat.completions.create(model=PLAIN.id, messages=ASK).choices[0].message
    assert message.content == "<think>x</think>y"


def test_anthropic_thinking_text_and_tool_use_blocks(app_server):
    import anthropic
    client = anthropic.Anthropic(base_url=app_server.root, api_key="x", max_retries=0)
    tools = [{"name": "get_weather", "input_schema": WEATHER[0]["function"]["parameters"]}]
    app_server.pool.script = THOUGHT_THEN_CALL
    msg = client.messages.create(model=QWEN3.id, max_tokens=50, messages=ASK, tools=tools)
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    assert msg.content[0].thinking == "Paris is a city."
    assert msg.content[1].text.strip() == "Let me check."
    assert msg.content[2].input == {"city": "Paris"} and msg.stop_reason == "tool_use"

    with client.messages.stream(model=QWEN3.id, max_tokens=50, messages=ASK,
                                tools=tools) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None))
            for b in final.content[:2]] == [("thinking", "Paris is a city."),
                                            ("text", "Let me check.\n")]
    assert final.content[2].input == {"city": "Paris"}
    starts = [(e.index, e.content_block.type) for e in events if e.type == "content_block_start"]
    assert starts == [(0, "thinking"), (1, "text"), (2, "tool_use")]
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert stops == [0, 1, 2]

    app_server.pool.script = ["still thinking"]          # never closed: thinking, empty text
    msg = client.messages.create(model=R1.id, max_tokens=50, messages=ASK)
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None))
            for b in msg.content] == [("thinking", "still thinking"), ("text", "")]

    # the thinking block sent back in the history is accepted (templates leave it out)
    app_server.pool.script = ["<think>ok</think>Six."]
    msg = client.messages.create(model=QWEN3.id, max_tokens=50, messages=ASK + [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "Paris.",
                                           "signature": ""}, {"type": "text", "text": "Sun"}]},
        {"role": "user", "content": "And tomorrow?"}])
    assert [b.type for b in msg.content] == ["thinking", "text"]
