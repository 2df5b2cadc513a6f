"""OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions."""
from __future__ import annotations

import asyncio
import time
import uuid

from starlette.responses import JSONResponse, StreamingResponse

from quantdesk.core.engine.types import Done

from . import tools
from .errors import ApiError, openai_body
from .request_flow import (api_error_for, note_usage, parse, read_json, sampling, sse,
                       start_generation, whole_reply)
from .schemas import ChatCompletionRequest, CompletionRequest

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _finish(done: Done) -> str:
    return "length" if done.finish_reason == "length" else "stop"


def _usage(done: Done) -> dict:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens}


async def list_models(request):
    state = request.app.state
    models = await asyncio.to_thread(state.catalog.models)
    loaded = {h.path for h in state.pool.manager.loaded()}
    return JSONResponse({"object": "list",
                         "data": [m.to_json(str(m.path) in loaded) for m in models]})


async def get_model(request):
    state = request.app.state
    model = await asyncio.to_thread(state.catalog.find, request.path_params["model"])
    if model is None:
        raise ApiError(404, f"the model {request.path_params['model']!r} is not in the library",
                       param="model", code="model_not_found")
    loaded = {h.path for h in state.pool.manager.loaded()}
    return JSONResponse(model.to_json(str(model.path) in loaded))


def tool_deltas(calls: list[dict]) -> list[dict]:
    """Streamed tool calls: each call's first delta has its index, id, type and name (what
    clients key on), the next one its arguments."""
    out = []
    for i, call in enumerate(calls):
        out.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                    "function": {"name": call["function"]["name"],
                                                 "arguments": ""}}]})
        out.append({"tool_calls": [{"index": i, "function": {
            "arguments": call["function"]["arguments"]}}]})
    return out


async def chat_completions(request):
    body = parse(ChatCompletionRequest, await read_json(request))
    (specs, choice), schema = tools.openai_tools(body), tools.response_schema(body)
    messages = tools.openai_history(body.messages)
    if choice is not None:
        if schema is not None:
            raise ApiError(400, "response_format cannot be combined with tools",
                           param="response_format")
        schema = tools.reply_schema(specs, choice, body.parallel_tool_calls)
        messages = tools.with_offer(messages, specs, choice)
    limit = body.max_completion_tokens or body.max_tokens
    params = sampling(body, max_tokens=limit, stop=body.stop, json_schema=schema)
    model, gen, first = await start_generation(request, body, messages, params)
    rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: dict, finish: str | None = None) -> dict:
        out = {"id": rid, "object": "chat.completion.chunk", "created": created,
               "model": model.id, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": finish}]}
        if include_usage:
            out["usage"] = None
        return out

    def ending(text: str, done: Done) -> tuple[str | None, list[dict], str]:
        if choice is None:
            return text, [], _finish(done)
        content, calls = tools.parse_reply(text)
        return content, tools.openai_calls(calls), "tool_calls" if calls else _finish(done)

    if not body.stream:
        text, done = await whole_reply(request, model, gen, first)
        content, calls, finish = ending(text, done)
        message = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        return JSONResponse({
            "id": rid, "object": "chat.completion", "created": created, "model": model.id,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": _usage(done)})

    async def stream():
        try:
            yield sse(chunk({"role": "assistant", "content": ""}))
            event, pieces = first, []
            while not isinstance(event, Done):
                if choice is None:
                    yield sse(chunk({"content": event.text}))
                else:   # a tool reply is one JSON document: parsed when it is complete
                    pieces.append(event.text)
                event = await gen.next()
            note_usage(request, event)
            content, calls, finish = ending("".join(pieces), event)
            if choice is not None:
                for delta in tool_deltas(calls) if calls else [{"content": content}]:
                    yield sse(chunk(delta))
            yield sse(chunk({}, finish))
            if include_usage:
                yield sse({"id": rid, "object": "chat.completion.chunk", "created": created,
                           "model": model.id, "choices": [], "usage": _usage(event)})
            yield sse("[DONE]")
        except Exception as exc:  # noqa: BLE001 - the host died mid-reply: say so in the stream
            request.state.error = api_error_for(exc, model.id).message
            yield sse(openai_body(api_error_for(exc, model.id)))
        finally:
            gen.cancel()   # the client went (or we are done): the host stops at once

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


async def completions(request):
    body = parse(CompletionRequest, await read_json(request))
    params = sampling(body, max_tokens=body.max_tokens, stop=body.stop)
    model, gen, first = await start_generation(request, body, [], params, prompt=body.prompt)
    rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    echo = body.prompt if body.echo else ""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def choice(text: str, finish: str | None) -> dict:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}

    if not body.stream:
        text, done = await whole_reply(request, model, gen, first)
        return JSONResponse({"id": rid, "object": "text_completion", "created": created,
                             "model": model.id, "choices": [choice(echo + text, _finish(done))],
                             "usage": _usage(done)})

    def chunk(text: str, finish: str | None = None) -> dict:
        return {"id": rid, "object": "text_completion", "created": created, "model": model.id,
                "choices": [choice(text, finish)]}

    async def stream():
        try:
            if echo:
                yield sse(chunk(echo))
            event = first
            while not isinstance(event, Done):
                yield sse(chunk(event.text))
                event = await gen.next()
            note_usage(request, event)
            yield sse(chunk("", _finish(event)))
            if include_usage:
                yield sse({"id": rid, "object": "text_completion", "created": created,
                           "model": model.id, "choices": [], "usage": _usage(event)})
            yield sse("[DONE]")
        except Exception as exc:  # noqa: BLE001
            request.state.error = api_error_for(exc, model.id).message
            yield sse(openai_body(api_error_for(exc, model.id)))
        finally:
            gen.cancel()

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
