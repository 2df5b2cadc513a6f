"""Qwen3-Coder / Qwen 3.5 XML tool calls (tool_formats' "qwen3_coder", xml_calls.py): values
typed by the tool's schema as llama.cpp types them, several calls with text before them, the
streaming hold across chunk boundaries, calls cut short, and the forced-call grammar (llama.cpp's
own grammar parser reads it). Fast: the grammar check loads only the starter model's vocabulary."""
from __future__ import annotations

import pytest

from quantdesk.core.server import tool_formats as tf
from quantdesk.core.server import xml_calls

ALARM = {"name": "set_alarm", "description": "Set an alarm",
         "parameters": {"type": "object", "required": ["hour", "loud", "label"], "properties": {
             "hour": {"type": "integer"}, "loud": {"type": "boolean"},
             "label": {"type": "string", "maxLength": 12},
             "ratio": {"type": "number"}, "tags": {"type": "array"},
             "size": {"type": ["integer", "string"]}, "mode": {"enum": ["a", "b"]},
             "extra": {}}}}


def call_text(name: str, **params) -> str:
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


def test_values_follow_the_schema_types():
    text = call_text("set_alarm", hour="7", loud="true", label="42", ratio="0.5",
                     tags='["x", 1]', size="12", mode="b", extra='{"a": [1, null]}')
    content, (call,) = tf.parse("qwen3_coder", text, [ALARM])
    assert content is None and call["name"] == "set_alarm"
    assert call["arguments"] == {"hour": 7, "loud": True, "label": "42", "ratio": 0.5,
                                 "tags": ["x", 1], "size": 12, "mode": "b",
                                 "extra": {"a": [1, None]}}
    assert type(call["arguments"]["hour"]) is int and call["arguments"]["loud"] is True


def test_text_stays_text_where_the_schema_says_or_json_does_not_fit():
    text = call_text("set_alarm", hour="seven", label="true", size="big", extra="plain words",
                     mode="a\nb")
    args = tf.parse("qwen3_coder", text, [ALARM])[1][0]["arguments"]
    assert args == {"hour": "seven", "label": "true", "size": "big", "extra": "plain words",
                    "mode": "a\nb"}
    # a multi-line value keeps its inner newlines; an unknown tool's values are typed loosely
    text = call_text("other", n="3", s="two\nlines")
    assert tf.parse("qwen3_coder", text, [ALARM])[1] == [
        {"name": "other", "arguments": {"n": 3, "s": "two\nlines"}}]


def test_two_calls_after_text_and_a_bare_function_of_an_offered_tool():
    text = ("Setting both.\n\n" + call_text("set_alarm", hour="6", loud="false", label="a")
            + "\n" + call_text("set_alarm", hour="7", loud="true", label="b"))
    content, calls = tf.parse("qwen3_coder", text, [ALARM])
    assert content == "Setting both."
    assert [c["arguments"]["hour"] for c in calls] == [6, 7]
    # Qwen3-Coder sometimes leaves out <tool_call>: a bare <function=NAME> of a tool still counts
    bare = "<function=set_alarm>\n<parameter=hour>\n5\n</parameter>\n</function>"
    assert tf.parse("qwen3_coder", bare, [ALARM]) == (
        None, [{"name": "set_alarm", "arguments": {"hour": 5}}])
    assert tf.parse("qwen3_coder", "#include <functional>", [ALARM]) == (
        "#include <functional>", [])


@pytest.mark.parametrize("text", [
    "Sure: <tool_call>\n<function=set_alarm>\n<parameter=hour>\n7\n</para",   # max_tokens
    "<tool_call>\n{\"name\": \"set_alarm\"}\n</tool_call>",                    # not this format
    "The alarm is set.",
])
def test_what_is_not_a_complete_call_stays_text(text):
    assert tf.parse("qwen3_coder", text, [ALARM]) == (text, [])


def test_the_splitter_streams_text_and_holds_calls_across_chunks():
    pieces = ["Let me", " set it.\n<tool", "_call>\n<function=set_alarm>\n<parameter=ho",
              "ur>\n7\n</parameter>\n<parameter=loud>\ntr", "ue\n</parameter>\n</function>\n",
              "</tool_call>"]
    s = tf.ReplySplitter("qwen3_coder", [ALARM])
    assert [s.feed(p) for p in pieces] == ["Let me", " set it.\n", "", "", "", ""]
    assert s.finish() == (None, [{"name": "set_alarm", "arguments": {"hour": 7, "loud": True}}])
    s = tf.ReplySplitter("qwen3_coder", [ALARM])   # a bare <function= is held from its start
    assert s.feed("ok <func") == "ok " and s.feed("tion=set_alarm>\n") == ""
    s = tf.ReplySplitter("qwen3_coder", [ALARM])   # what only looked like a tag goes out
    assert s.feed("a <to") == "a " and s.feed("day") == "<today" and s.finish() == (None, [])


def test_the_tool_plan_forces_a_call_with_this_formats_grammar():
    from quantdesk.core.server.tools import ToolPlan
    plan = ToolPlan("qwen3_coder", [ALARM], "set_alarm")
    messages, tools, grammar = plan.prepare([{"role": "user", "content": "Wake me at 7"}])
    assert tools == [{"type": "function", "function": ALARM}]
    assert set(grammar) == {"gbnf"}
    assert grammar["gbnf"].startswith('root ::= "<tool_call>\\n" ( tool-0 ) "</tool_call>"')
    assert plan.parse(call_text("set_alarm", hour="7", loud="true", label="x"))[1][0][
        "arguments"] == {"hour": 7, "loud": True, "label": "x"}


def _grammar_rules(gbnf: str) -> tuple[set[str], set[str]]:
    import re
    defined = set(re.findall(r"^([a-z0-9-]+) ::=", gbnf, re.M))
    bodies = re.sub(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]', " ", gbnf)
    used = {w for line in bodies.splitlines() for w in re.findall(
        r"(?<![\w-])([a-z][a-z0-9-]*)(?![\w-])", line.split("::=", 1)[-1])}
    return defined, used


def test_the_forced_grammar_has_each_tool_and_parameter_in_order():
    other = {"name": "ping", "parameters": {"type": "object", "properties": {}}}
    gbnf = xml_calls.forced_grammar([ALARM, other], None)
    defined, used = _grammar_rules(gbnf)
    assert used <= defined
    lines = dict(line.split(" ::= ", 1) for line in gbnf.splitlines() if " ::= " in line)
    assert lines["root"] == '"<tool_call>\\n" ( tool-0 | tool-1 ) "</tool_call>"'
    assert lines["tool-0"].split()[:4] == ['"<function=set_alarm>\\n"', "tool-0-arg-0",
                                           "tool-0-arg-1", "tool-0-arg-2"]  # required first
    assert lines["tool-0-arg-0"] == ('"<parameter=hour>\\n" ( xml-json-integer ) '
                                     '"\\n</parameter>\\n"')
    assert "[^<]{0,12}" in lines["tool-0-arg-2"] and "xml-text" in lines["tool-0-arg-7"]
    assert lines["tool-1"] == '"<function=ping>\\n"  "</function>\\n"'
    assert xml_calls.forced_grammar([ALARM, other], "ping").splitlines()[0] == (
        'root ::= "<tool_call>\\n" ( tool-1 ) "</tool_call>"')
    closed = xml_calls.with_text_before(gbnf, "</think>\n\n")
    assert closed.splitlines()[0].startswith('root ::= "</think>\\n\\n" "<tool_call>\\n"')


def test_llama_cpps_grammar_parser_reads_the_forced_grammar(starter_model):
    import llama_cpp
    llm = llama_cpp.Llama(str(starter_model), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def reads(gbnf: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode(), b"root")
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    gbnf = xml_calls.forced_grammar([ALARM], None)
    assert reads(gbnf) and reads(xml_calls.with_text_before(gbnf, 'say "x"\n'))
    assert not reads(gbnf.replace("xml-json-null ::=", "xml-json-nul ::="))   # the check bites


def test_a_call_written_back_by_the_template_reads_the_same():
    from quantdesk.core.engine.chat_template import render_chat_template
    from pathlib import Path
    template = (Path(__file__).parent / "templates" / "Qwen3.5-4B.jinja").read_text("utf-8")
    args = {"hour": 7, "loud": True, "label": "42", "tags": ["x", 1]}
    ask = [{"role": "user", "content": "Wake me"}]
    kw = dict(bos_token="", eos_token="", tools=tf.template_tools([ALARM]))
    before = render_chat_template(template, ask, **kw)
    full = render_chat_template(template, ask + [tf.assistant_message("qwen3_coder", "", [
        {"id": "c1", "name": "set_alarm", "arguments": args}])], add_generation_prompt=False,
        **kw)
    reply = full[len(before):].split("</think>")[-1].removesuffix("<|im_end|>\n")
    assert "<parameter=loud>\nTrue\n" in reply     # Jinja writes Python's True: read as one
    assert "<parameter=tags>\n[\"x\", 1]\n" in reply
    assert tf.parse("qwen3_coder", reply, [ALARM]) == (None, [{"name": "set_alarm",
                                                               "arguments": args}])
    assert tf.parse("qwen3_coder", call_text("set_alarm", label="True"), [ALARM])[1][0][
        "arguments"] == {"label": "True"}               # a string stays one
