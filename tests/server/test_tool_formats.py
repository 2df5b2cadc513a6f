"""Tool calls in each model family's own format: the family found from real chat templates,
calls rendered by those templates (what their models were trained to write) parsed back, and
the streaming splitter. Fast, no model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantdesk.core.engine.chat_template import render_chat_template
from quantdesk.core.server import tool_formats as tf

TEMPLATES = Path(__file__).parent / "templates"
FAMILY = {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use": "hermes",
          "Qwen-Qwen2.5-7B-Instruct": "hermes", "Qwen-Qwen3-0.6B": "hermes",
          "meta-llama-Llama-3.1-8B-Instruct": "llama3",
          "meta-llama-Llama-3.2-3B-Instruct": "llama3",
          "mistralai-Mistral-Nemo-Instruct-2407": "mistral",
          "HuggingFaceTB-SmolLM3-3B": "generic",
          "Qwen3.5-4B": "qwen3_coder", "Qwen3-Coder": "qwen3_coder"}
END_MARKERS = ("<|im_end|>", "<|eot_id|>", "</s>")
WEATHER = {"name": "get_weather", "description": "Current weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
CALL = {"id": "call_8f2e1c0d9b7a6f5e4d3c2b1a", "name": "get_weather",
        "arguments": {"city": "Paris", "units": {"temp": "C"}}}


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


def render(name, messages, **kw) -> str:
    return render_chat_template(template(name), messages, bos_token="<s>", eos_token="</s>",
                                tools=tf.template_tools([WEATHER]), **kw)


def written_reply(name: str, family: str, calls: list[dict], content: str = "") -> str:
    """The assistant turn the template writes for `calls`: the text its model produces."""
    before = render(name, ASK)
    full = render(name, ASK + [tf.assistant_message(family, content, calls)],
                  add_generation_prompt=False)
    assert full.startswith(before)
    # Qwen 3.5 closes the <think> block its prompt opened (the reasoning splitter's part)
    reply = full[len(before):].strip().removeprefix("</think>").strip()
    for marker in END_MARKERS:
        reply = reply.removesuffix(marker)
    return reply


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_the_family_is_found_from_the_template(name):
    assert tf.detect(template(name)) == FAMILY[name]


def test_the_starter_models_template_and_none_are_generic(starter_model):
    from quantdesk.core.gguf import inspect_gguf
    assert tf.detect(inspect_gguf(starter_model).chat_template) == "generic"
    assert tf.detect(None) == "generic"


@pytest.mark.parametrize("name", [n for n, f in sorted(FAMILY.items()) if f != "generic"])
def test_a_call_the_template_writes_parses_back(name):
    family = FAMILY[name]
    reply = written_reply(name, family, [CALL])
    content, calls = tf.parse(family, reply)
    assert calls == [{"name": "get_weather", "arguments": CALL["arguments"]}]
    assert content is None


@pytest.mark.parametrize("name", ["Qwen-Qwen2.5-7B-Instruct",   # Hermes 3 writes no text
                                  "Qwen3.5-4B", "Qwen3-Coder"])
def test_text_before_two_calls_is_content(name):
    second = {**CALL, "id": "call_2", "arguments": {"city": "Lyon"}}
    reply = written_reply(name, FAMILY[name], [CALL, second], content="Checking both.")
    content, calls = tf.parse(FAMILY[name], reply)
    assert content == "Checking both."
    assert [c["arguments"]["city"] for c in calls] == ["Paris", "Lyon"]


def test_the_templates_show_the_tools_and_take_results_back():
    for name, family in FAMILY.items():
        if family == "generic":
            continue
        result = tf.tool_message(family, CALL["id"], "Sunny, 21 C", "get_weather")
        prompt = render(name, ASK + [tf.assistant_message(family, "", [CALL]), result])
        assert "get_weather" in prompt.split("Paris")[0], name   # offered before the question
        assert "Sunny, 21 C" in prompt, name


def test_mistral_ids_are_nine_letters_or_digits_and_stay_paired():
    made = tf.assistant_message("mistral", "", [CALL])["tool_calls"][0]["id"]
    assert len(made) == 9 and made.isalnum()
    assert tf.tool_message("mistral", CALL["id"], "x")["tool_call_id"] == made
    assert tf.template_id("mistral", "abcDEF123") == "abcDEF123"
    assert tf.template_id("hermes", CALL["id"]) == CALL["id"]


def test_control_tags_left_out_of_the_text_still_parse():
    # llama.cpp drops control tokens (<|python_tag|>, [TOOL_CALLS]) from the text it returns
    args = json.dumps(CALL["arguments"])
    assert tf.parse("llama3", f'<|python_tag|>{{"name": "get_weather", "parameters": {args}}}'
                    )[1][0]["arguments"] == CALL["arguments"]
    assert tf.parse("mistral", f'[{{"name": "get_weather", "arguments": {args}}}]')[1]
    two = f'{{"name": "a", "parameters": {{}}}}; {{"name": "b", "parameters": {{}}}}'
    assert [c["name"] for c in tf.parse("llama3", two)[1]] == ["a", "b"]


@pytest.mark.parametrize("family, text", [
    ("hermes", 'Sure: <tool_call>\n{"name": "get_weather", "argum'),       # cut by max_tokens
    ("hermes", "<tool_call>not json</tool_call>"),
    ("llama3", '{"name": "get_weather", "parameters": {"city": "Par'),
    ("llama3", '{"answer": 42}'),                                           # JSON, not a call
    ("mistral", "The weather is fine."),
])
def test_what_is_not_a_complete_call_stays_text(family, text):
    assert tf.parse(family, text) == (text, [])


def test_the_splitter_streams_text_and_holds_a_call():
    s = tf.ReplySplitter("hermes")
    sent = [s.feed(p) for p in ["Let me", " check. <to", "ol_call>\n{\"name\": \"get_weather\", ",
                                '"arguments": {"city": "Paris"}}\n</tool_call>']]
    assert sent == ["Let me", " check. ", "", ""]
    assert s.finish() == (None, [{"name": "get_weather", "arguments": {"city": "Paris"}}])
    s = tf.ReplySplitter("hermes")
    assert s.feed("a <to") == "a " and s.feed("day") == "<today" and s.finish() == (None, [])
    s = tf.ReplySplitter("llama3")
    assert s.feed("  ") == "" and s.feed("Hello") == "  Hello" and s.feed(" {x}") == " {x}"
    s = tf.ReplySplitter("llama3")
    assert s.feed(' {"name": "a", ') == "" and s.feed('"parameters": {}}') == ""
    assert s.finish() == (None, [{"name": "a", "arguments": {}}])


def test_a_forced_call_is_one_call_in_the_familys_own_format():
    from quantdesk.core.engine.host import Host
    for family in ("hermes", "llama3", "mistral"):
        schema, prefix, suffix = tf.forced_call(family, [WEATHER], "get_weather")
        assert Host.grammar(schema, prefix, suffix) is not None
        key = "parameters" if family == "llama3" else "arguments"
        one = json.loads(schema)
        item = one["items"] if family == "mistral" else one
        assert item["anyOf"][0]["required"] == ["name", key]
    assert tf.forced_call("hermes", [WEATHER], None)[1:] == ("<tool_call>\n", "\n</tool_call>")
