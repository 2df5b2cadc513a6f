"""OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions."""
from __future__ import annotations

import asyncio
import time
import uuid

from starlette.responses import JSONResponse, StreamingResponse

from quantdesk.core.engine.types import Done

from . import tools
from .errors import ApiError, openai_body
from .logprobs_shape import chat_logprobs, completion_logprobs
from .reply_parts import ReplyParts, close_block_first, template_vars
from .request_flow import (api_error_for, find_model, note_usage, parse, read_json, sampling,
                           sse, start_generation, whole_reply)
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


def tool_deltas(calls: list[dict], first_index: int = 0) -> list[dict]:
    """Streamed tool calls: each call's first delta has its index, id, type and name (what
    clients key on), the next one its arguments."""
    out = []
    for i, call in enumerate(calls, first_index):
        out.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                    "function": {"name": call["function"]["name"],
                                                 "arguments": ""}}]})
        out.append({"tool_calls": [{"index": i, "function": {
            "arguments": call["function"]["arguments"]}}]})
    return out


async def chat_completions(request):
    body = parse(ChatCompletionRequest, await read_json(request))
    model = await find_model(request, body.model)
    specs, choice = tools.openai_tools(body)
    schema = tools.response_schema(body)
    if choice is not None and schema is not None:
        raise ApiError(400, "response_format cannot be combined with tools",
                       param="response_format")
    plan = tools.ToolPlan(model.tool_format, specs, choice, body.parallel_tool_calls)
    messages, template_tools, grammar = plan.prepare(
        tools.openai_history(body.messages, model.tool_format))
    if schema is not None:
        grammar = {"json_schema": schema}
    variables = template_vars(body)
    grammar = close_block_first(model, grammar, variables)
    top = (body.top_logprobs or 0) if body.logprobs else None
    params = sampling(body, max_tokens=body.max_completion_tokens or body.max_tokens,
                      stop=body.stop, logprobs=top, template_vars=variables, **grammar)
    model, gen, first = await start_generation(request, body, messages, params, model=model,
                                               tools=template_tools)
    rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: dict, finish: str | None = None, entries=None) -> dict:
        out = {"id": rid, "object": "chat.completion.chunk", "created": created,
               "model": model.id, "choices": [{"index": 0, "delta": delta,
                                              "logprobs": chat_logprobs(entries),
                                              "finish_reason": finish}]}
        if include_usage:
            out["usage"] = None
        return out

    if not body.stream:
        text, done, entries = await whole_reply(request, model, gen, first)
        reasoning, content, calls = ReplyParts(model, plan, body.reasoning_format, variables).whole(text)
        calls = tools.openai_calls(calls)
        message = {"role": "assistant", "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = calls
        return JSONResponse({
            "id": rid, "object": "chat.completion", "created": created, "model": model.id,
            "choices": [{"index": 0, "message": message, "logprobs": chat_logprobs(entries),
                         "finish_reason": "tool_calls" if calls else _finish(done)}],
            "usage": _usage(done)})

    async def stream():
        parts = ReplyParts(model, plan, body.reasoning_format, variables)
        key = {"reasoning": "reasoning_content", "content": "content"}
        try:
            yield sse(chunk({"role": "assistant", "content": ""}))
            event, held = first, None       # held: logprobs of text not sent yet
            while not isinstance(event, Done):
                if event.logprobs is not None:
                    held = (held or []) + event.logprobs
                for kind, text in parts.feed(event.text):
                    yield sse(chunk({key[kind]: text}, entries=held))
                    held = None
                event = await gen.next()
            note_usage(request, event)
            pieces, calls = parts.finish()
            deltas = [{key[kind]: text} for kind, text in pieces] + tool_deltas(
                tools.openai_calls(calls))
            for delta in deltas:
                yield sse(chunk(delta, entries=held))
                held = None
            yield sse(chunk({}, "tool_calls" if calls else _finish(event)))
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
    params = sampling(body, max_tokens=body.max_tokens, stop=body.stop, logprobs=body.logprobs)
    model, gen, first = await start_generation(request, body, [], params, prompt=body.prompt)
    rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    echo = body.prompt if body.echo else ""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def choice(text: str, finish: str | None, entries=None, offset: int = 0) -> dict:
        return {"index": 0, "text": text, "logprobs": completion_logprobs(entries, offset),
                "finish_reason": finish}

    if not body.stream:
        text, done, entries = await whole_reply(request, model, gen, first)
        return JSONResponse({"id": rid, "object": "text_completion", "created": created,
                             "model": model.id,
                             "choices": [choice(echo + text, _finish(done), entries, len(echo))],
                             "usage": _usage(done)})

    def chunk(text: str, finish: str | None = None, entries=None, offset: int = 0) -> dict:
        return {"id": rid, "object": "text_completion", "created": created, "model": model.id,
                "choices": [choice(text, finish, entries, offset)]}

    async def stream():
        try:
            if echo:
                yield sse(chunk(echo))
            event, offset = first, len(echo)
            while not isinstance(event, Done):
                yield sse(chunk(event.text, entries=event.logprobs, offset=offset))
                offset += len(event.text)
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
