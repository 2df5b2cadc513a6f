"""Anthropic-compatible POST /v1/messages: system, text content, streaming events, tool_use and
tool_result (through the same grammar as the OpenAI tools, see tools.py)."""
from __future__ import annotations

import json
import uuid

from starlette.responses import JSONResponse, StreamingResponse

from quantdesk.core.engine.types import Done

from . import tools
from .errors import ApiError, anthropic_body
from .openai_api import SSE_HEADERS
from .request_flow import (api_error_for, note_usage, parse, read_json, sampling, sse,
                       start_generation, whole_reply)
from .schemas import MessagesRequest, text_of


def _block_text(content) -> str:
    """A tool_result's content: a string or text blocks."""
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")


def messages_of(body: MessagesRequest) -> list[dict]:
    out = []
    if body.system:
        out.append({"role": "system", "content": text_of(body.system, "system")})
    for i, m in enumerate(body.messages):
        if isinstance(m.content, str):
            out.append({"role": m.role, "content": m.content})
            continue
        texts, calls, results = [], [], []
        for j, block in enumerate(m.content):
            if block.type == "text":
                texts.append(block.text or "")
            elif block.type == "tool_use":
                calls.append({"name": block.name or "", "arguments": block.input or {}})
            elif block.type == "tool_result":
                results.append(tools.result_text(block.tool_use_id, _block_text(block.content)))
            else:
                raise ApiError(400, f"messages.{i}.content.{j}: content of type {block.type!r} "
                                    f"is not supported", param=f"messages.{i}.content")
        text = "".join(texts)
        if calls:
            out.append({"role": m.role, "content": tools.calls_text(calls)})
        elif results:
            out.append({"role": m.role, "content": "\n".join(results + ([text] if text else []))})
        else:
            out.append({"role": m.role, "content": text})
    return out


def _stop_reason(done: Done, calls) -> str:
    if calls:
        return "tool_use"
    return "max_tokens" if done.finish_reason == "length" else "end_turn"


def _blocks(text: str, choice) -> tuple[list[dict], list]:
    """The reply's content blocks, and its calls."""
    if choice is None:
        return [{"type": "text", "text": text}], []
    content, calls = tools.parse_reply(text)
    if not calls:
        return [{"type": "text", "text": content or ""}], []
    return [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": c["name"],
             "input": c["arguments"]} for c in calls], calls


async def messages(request):
    body = parse(MessagesRequest, await read_json(request))
    specs, choice = tools.anthropic_tools(body)
    history, schema = messages_of(body), None
    if choice is not None:
        parallel = not (body.tool_choice or {}).get("disable_parallel_tool_use", False)
        schema = tools.reply_schema(specs, choice, parallel)
        history = tools.with_offer(history, specs, choice)
    params = sampling(body, max_tokens=body.max_tokens, stop=body.stop_sequences,
                      top_k=body.top_k, json_schema=schema)
    model, gen, first = await start_generation(request, body, history, params)
    mid = f"msg_{uuid.uuid4().hex}"

    def message(content: list, stop_reason, usage: dict) -> dict:
        return {"id": mid, "type": "message", "role": "assistant", "model": model.id,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": usage}

    if not body.stream:
        text, done = await whole_reply(request, model, gen, first)
        blocks, calls = _blocks(text, choice)
        return JSONResponse(message(blocks, _stop_reason(done, calls),
                                    {"input_tokens": done.prompt_tokens,
                                     "output_tokens": done.completion_tokens}))

    def block_events(index: int, block: dict):
        """A whole block as start, one delta, stop (a tool reply is sent once complete)."""
        if block["type"] == "text":
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta",
                                                          "text": block["text"]}
        else:
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield sse({"type": "content_block_start", "index": index, "content_block": start},
                  "content_block_start")
        yield sse({"type": "content_block_delta", "index": index, "delta": delta},
                  "content_block_delta")
        yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")

    async def stream():
        try:
            # The prompt's size is known only at the end (Done); Anthropic's message_start
            # carries it, so it says 0 there and the final message_delta carries both counts.
            yield sse({"type": "message_start", "message": message(
                [], None, {"input_tokens": 0, "output_tokens": 0})}, "message_start")
            if choice is None:
                yield sse({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "text", "text": ""}},
                          "content_block_start")
            yield sse({"type": "ping"}, "ping")
            event, pieces = first, []
            while not isinstance(event, Done):
                if choice is None:
                    yield sse({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": event.text}},
                              "content_block_delta")
                else:
                    pieces.append(event.text)
                event = await gen.next()
            note_usage(request, event)
            calls = []
            if choice is None:
                yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            else:
                blocks, calls = _blocks("".join(pieces), choice)
                for index, block in enumerate(blocks):
                    for line in block_events(index, block):
                        yield line
            yield sse({"type": "message_delta",
                       "delta": {"stop_reason": _stop_reason(event, calls), "stop_sequence": None},
                       "usage": {"input_tokens": event.prompt_tokens,
                                 "output_tokens": event.completion_tokens}}, "message_delta")
            yield sse({"type": "message_stop"}, "message_stop")
        except Exception as exc:  # noqa: BLE001 - the host died mid-reply: an error event
            err = api_error_for(exc, model.id)
            request.state.error = err.message
            yield sse(anthropic_body(err), "error")
        finally:
            gen.cancel()

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
