"""Anthropic-compatible POST /v1/messages: system, text content, streaming events, tool_use and
tool_result (through the same model-family formats as the OpenAI tools, see tools.py), and
stop_reason "stop_sequence" naming the stop string that ended the reply."""
from __future__ import annotations

import json
import uuid

from starlette.responses import JSONResponse, StreamingResponse

from quantdesk.core.engine.types import Done

from . import tool_formats, tools
from .errors import ApiError, anthropic_body
from .openai_api import SSE_HEADERS
from .reply_parts import ReplyParts, close_block_first, template_vars
from .request_flow import (api_error_for, find_model, note_usage, parse, read_json, sampling,
                           sse, start_generation, whole_reply)
from .schemas import MessagesRequest, text_of


def _block_text(content) -> str:
    """A tool_result's content: a string or text blocks."""
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")


def _image_part(block, where: str) -> dict:
    """An Anthropic image block as an engine content part: base64 sources only (a "url" source
    would mean going online)."""
    source = block.source or {}
    if source.get("type") != "base64" or not isinstance(source.get("data"), str):
        raise ApiError(400, f"{where}: only base64 image sources are read (Quantdesk does not "
                            f"go online for a request)", param=where)
    media = source.get("media_type") or "image/png"
    return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{source['data']}"}}


def messages_of(body: MessagesRequest, family: str = "generic") -> list[dict]:
    """The conversation for the chat template: tool_use and tool_result blocks in the family's
    template fields, or (generic) in tools.py's JSON shape."""
    out = []
    if body.system:
        out.append({"role": "system", "content": text_of(body.system, "system")})
    for i, m in enumerate(body.messages):
        if isinstance(m.content, str):
            out.append({"role": m.role, "content": m.content})
            continue
        texts, calls, results, images = [], [], [], []
        for j, block in enumerate(m.content):
            if block.type == "text":
                texts.append(block.text or "")
            elif block.type == "image" and m.role == "user":
                images.append(_image_part(block, f"messages.{i}.content.{j}"))
                texts.append(images[-1])
            elif block.type == "tool_use":
                calls.append({"id": block.id, "name": block.name or "",
                              "arguments": block.input or {}})
            elif block.type == "tool_result":
                results.append((block.tool_use_id, _block_text(block.content)))
            elif block.type in ("thinking", "redacted_thinking"):
                continue    # earlier reasoning sent back: templates leave it out of the prompt
            else:
                raise ApiError(400, f"messages.{i}.content.{j}: content of type {block.type!r} "
                                    f"is not supported", param=f"messages.{i}.content")
        if images:   # text and images in their order: the engine's content parts
            if calls or results:
                raise ApiError(400, f"messages.{i}.content: images and tool blocks in one "
                                    f"message are not supported", param=f"messages.{i}.content")
            out.append({"role": m.role, "content": [
                {"type": "text", "text": t} if isinstance(t, str) else t for t in texts]})
            continue
        text = "".join(texts)
        if family != "generic" and (calls or results):
            if calls:
                out.append(tool_formats.assistant_message(family, text, calls))
            out += [tool_formats.tool_message(family, cid, content) for cid, content in results]
            if results and text:
                out.append({"role": "user", "content": text})
        elif calls:
            out.append({"role": m.role, "content": tools.calls_text(
                [{"name": c["name"], "arguments": c["arguments"]} for c in calls])})
        elif results:
            out.append({"role": m.role, "content": "\n".join(
                [tools.result_text(cid, content) for cid, content in results]
                + ([text] if text else []))})
        else:
            out.append({"role": m.role, "content": text})
    return out


def _stop(done: Done, calls) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence)."""
    if calls:
        return "tool_use", None
    if done.stop_sequence is not None:
        return "stop_sequence", done.stop_sequence
    return ("max_tokens" if done.finish_reason == "length" else "end_turn"), None


def _tool_blocks(calls) -> list[dict]:
    return [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": c["name"],
             "input": c["arguments"]} for c in calls]


async def messages(request):
    body = parse(MessagesRequest, await read_json(request))
    model = await find_model(request, body.model)
    specs, choice = tools.anthropic_tools(body)
    parallel = not (body.tool_choice or {}).get("disable_parallel_tool_use", False)
    plan = tools.ToolPlan(model.tool_format, specs, choice, parallel)
    history, template_tools, grammar = plan.prepare(messages_of(body, model.tool_format))
    variables = template_vars(body)
    grammar = close_block_first(model, grammar, variables)
    params = sampling(body, max_tokens=body.max_tokens, stop=body.stop_sequences,
                      top_k=body.top_k, template_vars=variables, **grammar)
    model, gen, first = await start_generation(request, body, history, params, model=model,
                                               tools=template_tools)
    mid = f"msg_{uuid.uuid4().hex}"

    def message(content: list, stop: tuple, usage: dict) -> dict:
        return {"id": mid, "type": "message", "role": "assistant", "model": model.id,
                "content": content, "stop_reason": stop[0], "stop_sequence": stop[1],
                "usage": usage}

    if not body.stream:
        text, done, _ = await whole_reply(request, model, gen, first)
        reasoning, content, calls = ReplyParts(model, plan, body.reasoning_format, variables).whole(text)
        blocks = ([{"type": "thinking", "thinking": reasoning, "signature": ""}]
                  if reasoning is not None else [])
        blocks += ([{"type": "text", "text": content}] if content or not calls else [])
        return JSONResponse(message(blocks + _tool_blocks(calls), _stop(done, calls),
                                    {"input_tokens": done.prompt_tokens,
                                     "output_tokens": done.completion_tokens}))

    def block_start(index: int, kind: str) -> str:
        block = ({"type": "text", "text": ""} if kind == "content" else
                 {"type": "thinking", "thinking": "", "signature": ""})
        return sse({"type": "content_block_start", "index": index, "content_block": block},
                   "content_block_start")

    def block_delta(index: int, kind: str, text: str) -> str:
        delta = ({"type": "text_delta", "text": text} if kind == "content" else
                 {"type": "thinking_delta", "thinking": text})
        return sse({"type": "content_block_delta", "index": index, "delta": delta},
                   "content_block_delta")

    def block_stop(index: int) -> str:
        return sse({"type": "content_block_stop", "index": index}, "content_block_stop")

    def tool_events(index: int, block: dict):
        """A tool_use block as start, its input as one delta, stop (sent once complete)."""
        yield sse({"type": "content_block_start", "index": index,
                   "content_block": {**block, "input": {}}}, "content_block_start")
        yield sse({"type": "content_block_delta", "index": index, "delta": {
            "type": "input_json_delta", "partial_json": json.dumps(block["input"])}},
            "content_block_delta")
        yield block_stop(index)

    async def stream():
        parts = ReplyParts(model, plan, body.reasoning_format, variables)
        index, open_kind = -1, None       # the block being written: thinking, then text

        def write(kind: str, text: str):
            nonlocal index, open_kind
            if kind != open_kind:
                yield from close()
                index, open_kind = index + 1, kind
                yield block_start(index, kind)
            if text:
                yield block_delta(index, kind, text)

        def close():
            if open_kind == "reasoning":     # (no signature: nothing here is signed)
                yield sse({"type": "content_block_delta", "index": index, "delta": {
                    "type": "signature_delta", "signature": ""}}, "content_block_delta")
            if open_kind is not None:
                yield block_stop(index)

        try:
            # The prompt's size is known only at the end (Done); Anthropic's message_start
            # carries it, so it says 0 there and the final message_delta carries both counts.
            yield sse({"type": "message_start", "message": message(
                [], (None, None), {"input_tokens": 0, "output_tokens": 0})}, "message_start")
            wrote_text = parts.tools is None and parts.reasoning is None
            if wrote_text:                  # plain text only: its block opens at once
                for line in write("content", ""):
                    yield line
            yield sse({"type": "ping"}, "ping")
            event = first
            while not isinstance(event, Done):
                for kind, text in parts.feed(event.text):
                    wrote_text = wrote_text or kind == "content"
                    for line in write(kind, text):
                        yield line
                event = await gen.next()
            note_usage(request, event)
            pieces, calls = parts.finish()
            for kind, text in pieces:
                wrote_text = wrote_text or kind == "content"
                for line in write(kind, text):
                    yield line
            if not calls and not wrote_text:   # a reply always has its text block
                for line in write("content", ""):
                    yield line
            for line in close():
                yield line
            for index, block in enumerate(_tool_blocks(calls), index + 1):
                for line in tool_events(index, block):
                    yield line
            reason, sequence = _stop(event, calls)
            yield sse({"type": "message_delta",
                       "delta": {"stop_reason": reason, "stop_sequence": sequence},
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
