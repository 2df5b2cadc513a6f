"""Tools and structured output for every model: the request's side.

Which format a model's calls take depends on its chat template (tool_formats.py). A template
that knows tools gets them (and earlier calls and results) in Hugging Face's names and renders
them itself; its model answers in its own format, parsed back by tool_formats.parse. tool_choice
"auto" leaves the model free; "required" or a named function holds it to exactly one call in
its own format with a llama.cpp grammar.

A template that knows no tools (the starter model's) gets the "generic" treatment: every reply
is one JSON shape, described in a system message and enforced by a grammar built from a JSON
schema (as llama.cpp's own "generic" tool format does), so the reply always parses:

    {"tool_calls": [{"name": "<tool>", "arguments": {...}}, ...]}   or   {"content": "<text>"}

Earlier calls and tool results are written back in the same shape, so any template renders them.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from . import tool_formats
from .errors import ApiError


def openai_tools(body) -> tuple[list[dict], str | None]:
    """(tool specs, choice) of an OpenAI request; choice None: no tools in play, else "auto",
    "required" or the one function's name."""
    specs = []
    for i, tool in enumerate(body.tools or []):
        fn = tool.function
        if tool.type != "function" or fn is None:
            raise ApiError(400, f"tools.{i}: only function tools are supported", param="tools")
        specs.append({"name": fn.name, "description": fn.description or "",
                      "parameters": fn.parameters or {"type": "object", "properties": {}}})
    choice = body.tool_choice
    if not specs or choice == "none":
        return specs, None
    if choice in (None, "auto", "required"):
        return specs, choice or "auto"
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    return specs, _named(specs, name)


def anthropic_tools(body) -> tuple[list[dict], str | None]:
    """The same for an Anthropic request (tool_choice auto / any / tool / none)."""
    specs = [{"name": t.name, "description": t.description or "",
              "parameters": t.input_schema or {"type": "object", "properties": {}}}
             for t in body.tools or []]
    kind = (body.tool_choice or {}).get("type", "auto")
    if not specs or kind == "none":
        return specs, None
    if kind in ("auto", "any"):
        return specs, {"auto": "auto", "any": "required"}[kind]
    if kind == "tool":
        return specs, _named(specs, body.tool_choice.get("name"))
    raise ApiError(400, f"tool_choice type {kind!r} is not one of auto, any, tool, none",
                   param="tool_choice")


def _named(specs: list[dict], name) -> str:
    if name not in {t["name"] for t in specs}:
        raise ApiError(400, f"tool_choice names no tool in tools ({name!r})", param="tool_choice")
    return name


def reply_schema(specs: list[dict], choice: str, parallel: bool = True) -> str:
    """The JSON schema (text) every reply follows."""
    if choice not in ("auto", "required"):
        specs = [t for t in specs if t["name"] == choice]
    call = {"anyOf": [{"type": "object", "properties": {"name": {"const": t["name"]},
                                                        "arguments": t["parameters"]},
                       "required": ["name", "arguments"]} for t in specs]}
    array = {"type": "array", "items": call, "minItems": 1}
    if not parallel:
        array["maxItems"] = 1
    calls = {"type": "object", "required": ["tool_calls"], "properties": {"tool_calls": array}}
    if choice != "auto":
        return json.dumps(calls)
    text = {"type": "object", "properties": {"content": {"type": "string"}},
            "required": ["content"]}
    return json.dumps({"anyOf": [calls, text]})


def with_offer(messages: list[dict], specs: list[dict], choice: str) -> list[dict]:
    """The conversation with the tools described first in the (one) system message."""
    listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in specs)
    ask = {"auto": 'Either call tools, or answer with {"content": "<your answer>"}.',
           "required": "You must call at least one tool."}.get(
        choice, f"You must call the tool {choice}.")
    offer = ("You can call these tools (JSON Schema of each one's arguments):\n" + listing +
             '\nReply with JSON only. To call tools: {"tool_calls": [{"name": "<tool name>", '
             '"arguments": {<arguments>}}]}. ' + ask)
    messages = list(messages)
    if messages and messages[0]["role"] == "system":   # templates take one system message
        messages[0] = {"role": "system", "content": offer + "\n\n" + messages[0]["content"]}
    else:
        messages.insert(0, {"role": "system", "content": offer})
    return messages


def calls_text(calls: list[dict]) -> str:
    """Earlier calls ({name, arguments}) as the model wrote them."""
    return json.dumps({"tool_calls": calls}, ensure_ascii=False)


def result_text(call_id: str | None, content: str) -> str:
    return json.dumps({"tool_result": {"tool_call_id": call_id, "content": content}},
                      ensure_ascii=False)


def openai_history(messages, family: str = "generic") -> list[dict]:
    """An OpenAI conversation for the chat template: calls and tool results in the family's
    template fields, or (generic) in our JSON shape."""
    from .schemas import text_of
    out = []
    for i, m in enumerate(messages):
        role = "system" if m.role == "developer" else m.role
        content = text_of(m.content, f"messages.{i}.content", images=role == "user")
        if role == "assistant" and m.tool_calls:
            calls = [{"id": c.id, "name": c.function.name,
                      "arguments": _json_or_text(c.function.arguments)} for c in m.tool_calls]
            if family != "generic":
                out.append(tool_formats.assistant_message(family, content, calls))
                continue
            content = calls_text([{k: c[k] for k in ("name", "arguments")} for c in calls])
        elif role == "tool":
            if family != "generic":
                out.append(tool_formats.tool_message(family, m.tool_call_id, content))
                continue
            role, content = "user", result_text(m.tool_call_id, content)
        out.append({"role": role, "content": content})
    return out


@dataclass
class ToolPlan:
    """What a request with tools asks of the model, in its family's terms."""
    family: str
    specs: list[dict]
    choice: str | None          # None: no tools in play; "auto", "required" or a function name
    parallel: bool = True

    def prepare(self, messages: list[dict]) -> tuple[list[dict], list[dict] | None, dict]:
        """(messages, tools for the template, grammar fields of SamplingParams)."""
        if self.choice is None:
            return messages, None, {}
        if self.family == "generic":
            return (with_offer(messages, self.specs, self.choice), None,
                    {"json_schema": reply_schema(self.specs, self.choice, self.parallel)})
        grammar = {}
        if self.choice != "auto":
            name = None if self.choice == "required" else self.choice
            if self.family == "qwen3_coder":       # XML, not JSON: a grammar of its own
                grammar = {"gbnf": tool_formats.xml_calls.forced_grammar(self.specs, name)}
                return messages, tool_formats.template_tools(self.specs), grammar
            schema, prefix, suffix = tool_formats.forced_call(self.family, self.specs, name)
            grammar = {"json_schema": schema, "json_prefix": prefix, "json_suffix": suffix}
        return messages, tool_formats.template_tools(self.specs), grammar

    def splitter(self):
        """Streams plain text at once, holds back what may be calls (None: no tools)."""
        if self.choice is None:
            return None
        if self.family == "generic":
            return _WholeReply()
        return tool_formats.ReplySplitter(self.family, self.specs)

    def parse(self, text: str) -> tuple[str | None, list[dict]]:
        splitter = self.splitter()
        if splitter is None:
            return text, []
        sent = splitter.feed(text)
        content, calls = splitter.finish()
        joined = sent + (content or "")
        return (joined or None) if calls else joined, calls


class _WholeReply:
    """The generic JSON shape is one document: nothing goes out before it is complete."""

    def __init__(self):
        self.pieces: list[str] = []

    def feed(self, text: str) -> str:
        self.pieces.append(text)
        return ""

    def finish(self) -> tuple[str | None, list[dict]]:
        return parse_reply("".join(self.pieces))


def _json_or_text(arguments: str):
    try:
        return json.loads(arguments)
    except (TypeError, ValueError):
        return arguments


def parse_reply(text: str) -> tuple[str | None, list[dict]]:
    """(content, calls as {"name", "arguments": dict}). A reply cut short (max_tokens) does not
    parse: it is given back as text, so nothing is lost."""
    try:
        data = json.loads(text)
    except ValueError:
        return text, []
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        return None, [{"name": str(c.get("name", "")), "arguments": c.get("arguments", {})}
                      for c in data["tool_calls"] if isinstance(c, dict)]
    if isinstance(data, dict) and isinstance(data.get("content"), str):
        return data["content"], []
    return text, []


def openai_calls(calls: list[dict]) -> list[dict]:
    return [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": c["name"],
                          "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
            for c in calls]


def response_schema(body) -> str | None:
    """The JSON schema text of response_format (json_object: any JSON object)."""
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return json.dumps({"type": "object"})
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise ApiError(400, "response_format.json_schema.schema is required",
                       param="response_format")
    return json.dumps(fmt.json_schema.schema_)
