"""Tool calls in the model family's own format, end to end: the starter model's weights under
real Qwen 2.5 (Hermes format) and Mistral Nemo chat templates, served by `quantdesk serve` and
used through the official clients. tool_choice required / named holds the model to one call in
its family's format (a grammar); the server parses it, and earlier calls and results go back
through the template's own fields (Mistral's 9-character ids included). Also: the memory
budget keeps one of two models loaded."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import openai
import pytest

from .server_process import STARTER_ID, Server

pytestmark = pytest.mark.slow

TEMPLATES = Path(__file__).parent / "templates"
HERMES_ID, MISTRAL_ID = "smollm2-qwen-template", "smollm2-mistral-template"
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                   "required": ["city"]}}}]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def _with_chat_template():
    spec = importlib.util.spec_from_file_location(
        "template_models", Path(__file__).parents[1] / "engine" / "template_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.with_chat_template


def make_models(home: Path, starter: Path) -> dict:
    swap = _with_chat_template()
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    return {mid: swap(starter, models / f"{mid}.gguf",
                      (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8"))
            for mid, name in [(HERMES_ID, "Qwen-Qwen2.5-7B-Instruct"),
                              (MISTRAL_ID, "mistralai-Mistral-Nemo-Instruct-2407")]}


@pytest.fixture(scope="module")
def family_server(tmp_path_factory, starter_model):
    home = tmp_path_factory.mktemp("family")
    make_models(home, starter_model)
    srv = Server(home, "--ctx", "1024", "--ttl", "0")
    yield srv
    srv.stop()


@pytest.fixture
def client(family_server):
    return openai.OpenAI(base_url=family_server.base_url, api_key="x", max_retries=0,
                         timeout=120)


def chat(client, model, **kw):
    args = dict(model=model, messages=ASK, max_tokens=40, temperature=0, seed=1, tools=WEATHER)
    return client.chat.completions.create(**{**args, **kw})


def test_models_say_their_tool_format(family_server):
    formats = {m["id"]: m["tool_format"] for m in family_server.get("/v1/models")["data"]}
    assert formats == {STARTER_ID: "generic", HERMES_ID: "hermes", MISTRAL_ID: "mistral"}


@pytest.mark.parametrize("model", [HERMES_ID, MISTRAL_ID])
def test_a_forced_call_comes_back_as_tool_calls_plain_and_streamed(client, model):
    reply = chat(client, model, tool_choice="required")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    city = json.loads(call.function.arguments)["city"]
    assert isinstance(city, str)

    chunks = list(chat(client, model, stream=True,
                       tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].index == 0 and deltas[0].id.startswith("call_")
    assert deltas[0].function.name == "get_weather"
    assert all(d.id is None for d in deltas[1:])
    args = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(args) == json.loads(call.function.arguments)   # greedy: the same call
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # the call and its result go back through the template's own fields (Mistral's refuses
    # ids that are not 9 letters or digits: "call_..." ids are mapped); "none": no calls
    history = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {
                "name": "get_weather", "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"}]
    text = chat(client, model, messages=history, tool_choice="none", max_tokens=8)
    assert text.choices[0].message.tool_calls is None
    assert isinstance(text.choices[0].message.content, str)   # (this model may say nothing)


def test_anthropic_tool_use_and_result_in_the_hermes_format(family_server):
    import anthropic
    client = anthropic.Anthropic(base_url=family_server.root, api_key="x", max_retries=0,
                                 timeout=120)
    tools = [{"name": "get_weather", "description": "Current weather of a city",
              "input_schema": WEATHER[0]["function"]["parameters"]}]
    msg = client.messages.create(model=HERMES_ID, max_tokens=40, tools=tools, messages=ASK,
                                 tool_choice={"type": "any"}, extra_body={"temperature": 0})
    assert msg.stop_reason == "tool_use"
    (use,) = msg.content
    assert use.type == "tool_use" and use.name == "get_weather"
    with client.messages.stream(model=HERMES_ID, max_tokens=40, tools=tools, messages=ASK,
                                tool_choice={"type": "any"},
                                extra_body={"temperature": 0}) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["tool_use"] and final.content[0].input == use.input
    reply = client.messages.create(
        model=HERMES_ID, max_tokens=6, tools=tools, extra_body={"temperature": 0},
        tool_choice={"type": "none"}, messages=ASK + [
            {"role": "assistant", "content": [{"type": "tool_use", "id": use.id,
                                               "name": use.name, "input": use.input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                          "content": "Sunny, 21 C"}]}])
    assert reply.content[0].type == "text" and reply.content[0].text


def test_a_memory_budget_that_fits_one_model_keeps_one(tmp_path, starter_model):
    from quantdesk.core.runtime.models import LoadRequest, ModelManager, predicted_bytes
    paths = make_models(tmp_path, starter_model)
    manager = ModelManager()
    sizes = [predicted_bytes(manager.resolve(LoadRequest(str(p), n_ctx=256)))
             for p in paths.values()]
    budget = max(sizes) + min(sizes) // 2                  # one fits, two do not
    srv = Server(tmp_path, "--ctx", "256", "--ttl", "0", "--max-models", "3",
                 "--memory-budget", str(budget))
    try:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=120)
        for model in (HERMES_ID, MISTRAL_ID):
            client.chat.completions.create(model=model, messages=ASK, max_tokens=1)
            (host,) = srv.loaded()          # the other one went first
            assert host["id"] == model and host["planned_bytes"] in sizes
    finally:
        srv.stop()
    roomy = Server(tmp_path, "--ctx", "256", "--ttl", "0", "--max-models", "3",
                   "--memory-budget", str(sum(sizes) + (1 << 20)))
    try:
        client = openai.OpenAI(base_url=roomy.base_url, api_key="x", max_retries=0, timeout=120)
        for model in (HERMES_ID, MISTRAL_ID):
            client.chat.completions.create(model=model, messages=ASK, max_tokens=1)
        assert sorted(h["id"] for h in roomy.loaded()) == [MISTRAL_ID, HERMES_ID]
    finally:
        roomy.stop()
