"""Anthropic-compatible POST /v1/messages: system, text content, streaming events."""
from __future__ import annotations

import uuid

from starlette.responses import JSONResponse, StreamingResponse

from quantdesk.core.engine.types import Done

from .errors import anthropic_body
from .openai_api import SSE_HEADERS
from .requests import (api_error_for, note_usage, parse, read_json, sampling, sse,
                       start_generation, whole_reply)
from .schemas import MessagesRequest, text_of


def _stop_reason(done: Done) -> str:
    return "max_tokens" if done.finish_reason == "length" else "end_turn"


def messages_of(body: MessagesRequest) -> list[dict]:
    out = []
    if body.system:
        out.append({"role": "system", "content": text_of(body.system, "system")})
    for i, m in enumerate(body.messages):
        out.append({"role": m.role, "content": text_of(m.content, f"messages.{i}.content")})
    return out


async def messages(request):
    body = parse(MessagesRequest, await read_json(request))
    params = sampling(body, max_tokens=body.max_tokens, stop=body.stop_sequences,
                      top_k=body.top_k)
    model, gen, first = await start_generation(request, body, messages_of(body), params)
    mid = f"msg_{uuid.uuid4().hex}"

    def message(content: list, stop_reason, usage: dict) -> dict:
        return {"id": mid, "type": "message", "role": "assistant", "model": model.id,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": usage}

    if not body.stream:
        text, done = await whole_reply(request, model, gen, first)
        return JSONResponse(message([{"type": "text", "text": text}], _stop_reason(done),
                                    {"input_tokens": done.prompt_tokens,
                                     "output_tokens": done.completion_tokens}))

    async def stream():
        try:
            # The prompt's size is known only at the end (Done); Anthropic's message_start
            # carries it, so it says 0 there and the final message_delta carries both counts.
            yield sse({"type": "message_start", "message": message(
                [], None, {"input_tokens": 0, "output_tokens": 0})}, "message_start")
            yield sse({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}, "content_block_start")
            yield sse({"type": "ping"}, "ping")
            event = first
            while not isinstance(event, Done):
                yield sse({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": event.text}},
                          "content_block_delta")
                event = await gen.next()
            note_usage(request, event)
            yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            yield sse({"type": "message_delta",
                       "delta": {"stop_reason": _stop_reason(event), "stop_sequence": None},
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
