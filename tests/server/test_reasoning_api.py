"""Reasoning split out end to end: the starter model's weights under real DeepSeek-R1 and
Qwen3.5 chat templates (both generation prompts open "<think>\\n", so the reply starts inside the
block; Qwen3.5's writes it closed and empty with enable_thinking=false), served by
`quantdesk serve`, read through the official clients. The reply of a block the prompt opened is reasoning until it closes (this small model
never closes it); a grammar-forced reply (response_format, tool_choice required) closes the block
first, so its JSON is content (tool calls the same way: test_reasoning_stream.py); reasoning_format
"none" keeps it inline."""
from __future__ import annotations

import json

import openai
import pytest

from .server_process import STARTER_ID, Server
from .test_family_tools_api import TEMPLATES, _with_chat_template

pytestmark = pytest.mark.slow

R1_ID, QWEN_ID = "smollm2-r1-template", "smollm2-qwen35-template"
ASK = [{"role": "user", "content": "What is two plus two?"}]
ANSWER = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
    "type": "object", "properties": {"answer": {"type": "string", "maxLength": 3}},
    "required": ["answer"], "additionalProperties": False}}}


@pytest.fixture(scope="module")
def think_server(tmp_path_factory, starter_model):
    home = tmp_path_factory.mktemp("reasoning")
    swap = _with_chat_template()
    (home / "models").mkdir()
    for mid, name in [(R1_ID, "deepseek-ai-DeepSeek-R1-Distill-Llama-8B"),
                      (QWEN_ID, "Qwen3.5-4B")]:
        swap(starter_model, home / "models" / f"{mid}.gguf",
             (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8"))
    srv = Server(home, "--ctx", "512", "--ttl", "0")
    yield srv
    srv.stop()


@pytest.fixture
def client(think_server):
    return openai.OpenAI(base_url=think_server.base_url, api_key="x", max_retries=0, timeout=120)


def chat(client, model=R1_ID, **kw):
    args = dict(model=model, messages=ASK, max_tokens=8, temperature=0, seed=1)
    return client.chat.completions.create(**{**args, **kw})


def test_models_say_their_reasoning_format(think_server):
    formats = {m["id"]: m["reasoning_format"] for m in think_server.get("/v1/models")["data"]}
    assert formats == {STARTER_ID: None, R1_ID: "think", QWEN_ID: "think"}


def test_a_block_the_prompt_opened_is_reasoning_content(client):
    reply = chat(client)
    message = reply.choices[0].message
    thought = message.reasoning_content
    assert isinstance(thought, str) and thought.strip() == thought and thought
    assert message.content == "" and reply.choices[0].finish_reason == "length"

    # the same tokens (greedy) left inline: the reply exactly as the model wrote it
    inline = chat(client, extra_body={"reasoning_format": "none"}).choices[0].message
    assert inline.content.strip() == thought
    assert getattr(inline, "reasoning_content", None) is None

    chunks = list(chat(client, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == thought
    assert all(not d.content for d in deltas)            # (the first chunk's role has "")
    assert sum(1 for d in deltas if getattr(d, "reasoning_content", None)) > 1   # streamed
    assert chunks[-1].choices[0].finish_reason == "length"


def test_a_forced_reply_closes_the_block_and_its_json_is_content(client):
    reply = chat(client, max_tokens=30, response_format=ANSWER)
    message = reply.choices[0].message
    assert getattr(message, "reasoning_content", None) is None       # an empty thought
    assert isinstance(json.loads(message.content)["answer"], str)

    # "none": what the model wrote, the closing tag the grammar made it write included
    inline = chat(client, max_tokens=30, response_format=ANSWER,
                  extra_body={"reasoning_format": "none"}).choices[0].message
    assert inline.content.startswith("</think>")
    assert json.loads(inline.content[len("</think>"):]) == json.loads(message.content)


def test_enable_thinking_false_closes_the_block_in_the_prompt(think_server, client):
    on = chat(client, QWEN_ID)
    thinking = on.choices[0].message
    assert thinking.reasoning_content and thinking.content == ""
    off = chat(client, QWEN_ID, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    message = off.choices[0].message
    assert getattr(message, "reasoning_content", None) is None and message.content
    assert off.usage.prompt_tokens > on.usage.prompt_tokens   # "</think>\n\n" in the prompt
    import anthropic
    claude = anthropic.Anthropic(base_url=think_server.root, api_key="x", max_retries=0,
                                 timeout=120)
    msg = claude.messages.create(model=QWEN_ID, max_tokens=8, messages=ASK,
                                 thinking={"type": "disabled"},
                                 extra_body={"temperature": 0, "seed": 1})
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == message.content


def test_anthropic_thinking_block_before_the_text(think_server):
    import anthropic
    claude = anthropic.Anthropic(base_url=think_server.root, api_key="x", max_retries=0,
                                 timeout=120)
    args = dict(model=R1_ID, max_tokens=8, messages=ASK, extra_body={"temperature": 0,
                                                                      "seed": 1})
    msg = claude.messages.create(**args)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    thought = msg.content[0].thinking
    assert thought and thought.strip() == thought and msg.content[1].text == ""
    assert msg.stop_reason == "max_tokens"

    with claude.messages.stream(**args) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == thought
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas.count("thinking_delta") > 1 and "text_delta" not in deltas

    inline = claude.messages.create(**{**args, "extra_body": {
        **args["extra_body"], "reasoning_format": "none"}})
    assert [b.type for b in inline.content] == ["text"]
    assert inline.content[0].text.strip() == thought


def test_a_bad_reasoning_format_is_refused(think_server):
    status, body = think_server.request(
        "/v1/chat/completions",
        json.dumps({"model": R1_ID, "messages": ASK, "reasoning_format": "loud"}).encode(),
        {"Content-Type": "application/json"})
    assert status == 400 and "reasoning_format" in body["error"]["message"]

