"""The reasoning parser (core.engine.reasoning) on crafted replies: tags cut at every point of a
stream, no closing tag, text before <think>, a block the prompt opened, gpt-oss's channels,
tool calls after the reasoning (server.reply_parts) and which templates say what."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from quantdesk.core.engine import reasoning as r
from quantdesk.core.server import tools
from quantdesk.core.server.catalog import ServedModel
from quantdesk.core.server.reply_parts import ReplyParts, close_block_first, template_vars

TEMPLATES = Path(__file__).parent / "templates"


def run(chunks, opened=False, fmt=r.THINK) -> list[tuple[str, str]]:
    """The splitter's pieces, neighbours of one kind joined (how a client reads them)."""
    splitter = r.ReasoningSplitter(fmt, opened)
    pieces = [p for c in chunks for p in splitter.feed(c)] + splitter.finish()
    joined: list[list] = []
    for kind, text in pieces:
        assert text, "no empty pieces go out"
        if joined and joined[-1][0] == kind:
            joined[-1][1] += text
        else:
            joined.append([kind, text])
    return [tuple(p) for p in joined]


def cuts(text: str):
    """The text cut into two and into three pieces at every pair of points."""
    yield [text]
    for i in range(1, len(text)):
        yield [text[:i], text[i:]]
    for i in range(1, len(text), 3):
        for j in range(i + 1, len(text)):
            yield [text[:i], text[i:j], text[j:]]


QWEN3_REPLY = "<think>\nThe user greets me.\nI greet back.\n</think>\n\nHello there!"


def test_a_think_block_splits_wherever_the_stream_cuts_it():
    want = [("reasoning", "The user greets me.\nI greet back."), ("content", "Hello there!")]
    for chunks in cuts(QWEN3_REPLY):
        assert run(chunks) == want, chunks
    assert run(list(QWEN3_REPLY)) == want


def test_the_reasoning_goes_out_while_it_is_written():
    splitter = r.ReasoningSplitter(r.THINK)
    assert splitter.feed("<thi") == []                   # may be a tag: held
    assert splitter.feed("nk>Let me see") == [("reasoning", "Let me see")]
    assert splitter.feed(" more.\n</th") == [("reasoning", " more.")]   # the "\n": held
    assert splitter.feed("ink>\n\n") == []
    assert splitter.feed("Yes.") == [("content", "Yes.")]
    assert splitter.finish() == []


def test_a_block_never_closed_is_all_reasoning():
    for chunks in cuts("<think>\nStill thinking about</thi"):
        assert run(chunks) == [("reasoning", "Still thinking about</thi")], chunks


def test_text_before_think_is_all_content_tag_included():
    text = "Sure. <think>not a thought</think> done"
    for chunks in cuts(text):
        assert run(chunks) == [("content", text)]


def test_a_reply_without_a_block_is_content_unchanged():
    assert run(["Hello", " world"]) == [("content", "Hello world")]
    assert run(["  <", "b>bold</b>"]) == [("content", "  <b>bold</b>")]
    assert run(["<thin"]) == [("content", "<thin")]      # too short to be a tag: kept
    assert run(["  "]) == [("content", "  ")]


def test_a_block_the_prompt_opened_ends_at_the_closing_tag():
    text = "Two and two.\nFour.\n</think>\n\nIt is 4."
    for chunks in cuts(text):
        assert run(chunks, opened=True) == [("reasoning", "Two and two.\nFour."),
                                            ("content", "It is 4.")], chunks
    assert run(["no closing tag at all"], opened=True) == [("reasoning", "no closing tag at all")]
    assert run(["</think>\n\n{\"a\": 1}"], opened=True) == [("content", '{"a": 1}')]


def test_an_empty_block_says_nothing():
    assert run(["<think>\n\n</think>\n\nHi"]) == [("content", "Hi")]
    assert r.split_reasoning("<think>\n\n</think>\n\nHi", r.THINK) == (None, "Hi")
    assert r.split_reasoning("<think>", r.THINK) == (None, "")


def test_gpt_oss_channels_without_their_control_tokens():
    text = "analysisThe user wants a greeting.assistantfinalHello!"
    for chunks in cuts(text):
        assert run(chunks, fmt=r.HARMONY) == [("reasoning", "The user wants a greeting."),
                                              ("content", "Hello!")], chunks
    assert run(["finalHi"], fmt=r.HARMONY) == [("content", "Hi")]


@pytest.mark.parametrize("name, fmt, opens", [
    ("Qwen-Qwen3-0.6B", r.THINK, False),        # the model writes <think> itself
    ("Qwen3.5-4B", r.THINK, True),               # the generation prompt ends "<think>\n"
    ("deepseek-ai-DeepSeek-R1-Distill-Llama-8B", r.THINK, True),
    ("HuggingFaceTB-SmolLM3-3B", r.THINK, False),
    ("openai-gpt-oss-120b", r.HARMONY, False),
    ("Qwen-Qwen2.5-7B-Instruct", None, False),
    ("meta-llama-Llama-3.1-8B-Instruct", None, False),
])
def test_the_format_is_read_from_the_template(name, fmt, opens):
    template = (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")
    assert r.detect(template) is fmt
    assert r.prompt_opens_block(template) is opens


def test_template_variables_can_close_the_block():
    qwen35 = (TEMPLATES / "Qwen3.5-4B.jinja").read_text(encoding="utf-8")
    assert r.prompt_opens_block(qwen35, {"enable_thinking": True})
    assert not r.prompt_opens_block(qwen35, {"enable_thinking": False})   # written closed
    from quantdesk.core.engine.chat_template import render_chat_template
    text = render_chat_template(qwen35, [{"role": "user", "content": "Hi"}], bos_token="",
                                eos_token="", variables={"enable_thinking": False,
                                                         "add_generation_prompt": False})
    assert text.endswith("<think>\n\n</think>\n\n")   # ours kept: the prompt still asks
    model = replace(_model(opened=True), chat_template=qwen35)
    plan = tools.ToolPlan("hermes", [], None)
    assert ReplyParts(model, plan).whole("x</think>y") == ("x", "y", [])
    assert ReplyParts(model, plan, variables={"enable_thinking": False}).whole(
        "x</think>y") == (None, "x</think>y", [])
    assert close_block_first(model, {"json_schema": "{}"}, {"enable_thinking": False}) == {
        "json_schema": "{}"}


def test_request_options_become_template_variables():
    from types import SimpleNamespace
    assert template_vars(SimpleNamespace(chat_template_kwargs={"enable_thinking": False})) == {
        "enable_thinking": False}
    assert template_vars(SimpleNamespace(chat_template_kwargs=None,
                                         thinking={"type": "disabled"})) == {
        "enable_thinking": False}
    assert template_vars(SimpleNamespace(chat_template_kwargs={"enable_thinking": False},
                                         thinking={"type": "enabled", "budget_tokens": 9})) == {
        "enable_thinking": False}                        # the explicit variable wins
    assert template_vars(SimpleNamespace(chat_template_kwargs=None, thinking=None)) == {}


def _model(fmt=r.THINK, opened=False, tool_format="hermes") -> ServedModel:
    return ServedModel("m", Path("m.gguf"), "m", "Q4_0", 512, 1, 0, tool_format, fmt, opened)


HERMES_AFTER_THOUGHT = ('<think>\nI should look it up.\n</think>\n\n'
                        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
                        '</tool_call>')


def test_tool_calls_after_reasoning_stream_and_parse():
    plan = tools.ToolPlan("hermes", [{"name": "get_weather", "parameters": {}}], "auto")
    for chunks in cuts(HERMES_AFTER_THOUGHT):
        parts = ReplyParts(_model(), plan)
        pieces = [p for c in chunks for p in parts.feed(c)]
        rest, calls = parts.finish()
        assert "".join(t for k, t in pieces + rest if k == "reasoning") == "I should look it up."
        assert [t for k, t in pieces + rest if k == "content"] == []
        assert calls == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    whole = ReplyParts(_model(), plan).whole(HERMES_AFTER_THOUGHT)
    assert whole == ("I should look it up.", None,
                     [{"name": "get_weather", "arguments": {"city": "Paris"}}])


def test_reasoning_format_none_keeps_the_reply_as_written():
    plan = tools.ToolPlan("hermes", [], None)
    assert ReplyParts(_model(), plan, "none").whole(QWEN3_REPLY) == (None, QWEN3_REPLY, [])
    assert ReplyParts(_model(), plan, "auto").whole(QWEN3_REPLY) == (
        "The user greets me.\nI greet back.", "Hello there!", [])
    assert ReplyParts(_model(None), plan).whole(QWEN3_REPLY) == (None, QWEN3_REPLY, [])


def test_a_forced_reply_closes_a_block_the_prompt_opened():
    grammar = {"json_schema": "{}", "json_prefix": "<tool_call>\n", "json_suffix": "x"}
    assert close_block_first(_model(opened=True), grammar)["json_prefix"] == \
        "</think>\n\n<tool_call>\n"
    assert close_block_first(_model(opened=False), grammar) == grammar
    assert close_block_first(_model(opened=True), {}) == {}
