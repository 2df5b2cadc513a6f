"""Tool calls and structured output through a grammar, for any model.

Many models' chat templates know no tools (the starter model's does not), and each family that
does writes its calls in its own text format. So the server asks every model for one JSON shape,
described in a system message and enforced by a llama.cpp grammar built from a JSON schema (as
llama.cpp's own "generic" tool format does): the reply always parses.

    {"tool_calls": [{"name": "<tool>", "arguments": {...}}, ...]}   or   {"content": "<text>"}

tool_choice "none": no tools offered; "auto": either shape; "required": calls only; a named
function: a call to that function only. Earlier calls and tool results in the conversation are
written back in the same shape, so any chat template can render them.
"""
from __future__ import annotations

import json
import uuid

from .errors import ApiError


def _tools_of(body) -> list[dict]:
    out = []
    for i, tool in enumerate(body.tools or []):
        fn = tool.function
        if tool.type != "function" or fn is None:
            raise ApiError(400, f"tools.{i}: only function tools are supported", param="tools")
        out.append({"name": fn.name, "description": fn.description or "",
                    "parameters": fn.parameters or {"type": "object", "properties": {}}})
    return out


def choice_of(body) -> str | None:
    """None: no tools in play; else "auto", "required" or the one function's name."""
    tools, choice = body.tools or [], body.tool_choice
    if not tools or choice == "none":
        return None
    if choice in (None, "auto", "required"):
        return choice or "auto"
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if name not in {t.function.name for t in tools if t.function}:
        raise ApiError(400, f"tool_choice names no tool in tools ({name!r})", param="tool_choice")
    return name


def reply_schema(body, choice: str) -> dict:
    tools = _tools_of(body)
    if choice not in ("auto", "required"):
        tools = [t for t in tools if t["name"] == choice]
    call = {"anyOf": [{"type": "object", "properties": {"name": {"const": t["name"]},
                                                        "arguments": t["parameters"]},
                       "required": ["name", "arguments"]} for t in tools]}
    array = {"type": "array", "items": call, "minItems": 1}
    if not body.parallel_tool_calls:
        array["maxItems"] = 1
    calls = {"type": "object", "required": ["tool_calls"], "properties": {"tool_calls": array}}
    if choice != "auto":
        return calls
    text = {"type": "object", "properties": {"content": {"type": "string"}},
            "required": ["content"]}
    return {"anyOf": [calls, text]}


def system_prompt(body, choice: str) -> str:
    tools = _tools_of(body)
    listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    ask = {"auto": 'Either call tools, or answer with {"content": "<your answer>"}.',
           "required": "You must call at least one tool."}.get(
        choice, f"You must call the tool {choice}.")
    return ("You can call these tools (JSON Schema of each one's arguments):\n" + listing +
            '\nReply with JSON only. To call tools: {"tool_calls": [{"name": "<tool name>", '
            '"arguments": {<arguments>}}]}. ' + ask)


def history(messages) -> list[dict]:
    """The conversation for the chat template: earlier calls and tool results in our shape."""
    from .schemas import text_of
    out = []
    for i, m in enumerate(messages):
        role = "system" if m.role == "developer" else m.role
        content = text_of(m.content, f"messages.{i}.content")
        if role == "assistant" and m.tool_calls:
            calls = [{"name": c.function.name, "arguments": _json_or_text(c.function.arguments)}
                     for c in m.tool_calls]
            content = json.dumps({"tool_calls": calls}, ensure_ascii=False)
        elif role == "tool":
            role = "user"
            content = json.dumps({"tool_result": {"tool_call_id": m.tool_call_id,
                                                  "content": content}}, ensure_ascii=False)
        out.append({"role": role, "content": content})
    return out


def _json_or_text(arguments: str):
    try:
        return json.loads(arguments)
    except (TypeError, ValueError):
        return arguments


def parse_reply(text: str) -> tuple[str | None, list[dict]]:
    """(content, tool calls in OpenAI's shape). A reply cut short (max_tokens) does not parse:
    it is given back as text, so nothing is lost."""
    try:
        data = json.loads(text)
    except ValueError:
        return text, []
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        calls = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                  "function": {"name": c.get("name", ""),
                               "arguments": json.dumps(c.get("arguments", {}),
                                                       ensure_ascii=False)}}
                 for c in data["tool_calls"] if isinstance(c, dict)]
        return None, calls
    if isinstance(data, dict) and isinstance(data.get("content"), str):
        return data["content"], []
    return text, []


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
