"""What every generation endpoint does before and around its own format: read the body within the
size limit, validate it, find the model, start the generation while watching for the client to
go, and turn engine failures into ApiErrors. Shared by openai_api.py and anthropic_api.py.
"""
from __future__ import annotations

import asyncio
import json

from pydantic import ValidationError

from quantdesk.core.engine.types import (ContextOverflowError, Done, EngineError,
                                         InvalidRequestError, ModelFileError, SamplingParams)

from .errors import ApiError, one_line, validation_message
from .pool import Generation

DEFAULT_MAX_BODY = 4 * 1024 * 1024


class ClientGone(Exception):
    """The client disconnected; its generation was cancelled and nothing more is sent."""


async def read_json(request) -> dict:
    limit = getattr(request.app.state, "max_body_bytes", DEFAULT_MAX_BODY)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is larger than the server's limit ({limit} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the request body is larger than the server's limit "
                                f"({limit} bytes)")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def parse(model_cls, data: dict):
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        message, param = validation_message(exc)
        raise ApiError(400, message, param=param) from None


def sampling(body, *, max_tokens: int | None, stop: list[str], top_k: int | None = None,
             logprobs: int | None = None, **grammar) -> SamplingParams:
    """Our defaults where the request says nothing; max_tokens None: up to the context's end."""
    base = SamplingParams()
    return SamplingParams(
        temperature=base.temperature if body.temperature is None else body.temperature,
        top_p=base.top_p if body.top_p is None else body.top_p,
        top_k=base.top_k if top_k is None else top_k,
        min_p=base.min_p, repeat_penalty=base.repeat_penalty,
        max_tokens=0 if max_tokens is None else max_tokens,   # llama.cpp: <= 0 is "to the end"
        seed=-1 if body.seed is None else body.seed, stop=tuple(stop or ()),
        logprobs=logprobs, **grammar)


async def _disconnected(request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request, work, on_gone):
    """Await `work` (a coroutine); if the client goes first, call on_gone() (cancel the
    generation at once), cancel the work and raise ClientGone."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        on_gone()
        task.cancel()
        raise
    finally:
        watch.cancel()
    if task.done():
        return task.result()
    on_gone()
    task.cancel()
    raise ClientGone


def api_error_for(exc: BaseException, model_id: str) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ContextOverflowError):
        return ApiError(400, f"{one_line(exc)} (nothing was truncated; a request may ask for a "
                             f"larger context with \"n_ctx\")", code="context_length_exceeded")
    if isinstance(exc, InvalidRequestError):
        return ApiError(400, one_line(exc))
    if isinstance(exc, ModelFileError):
        return ApiError(500, f"{model_id}: {one_line(exc)}", code="model_file_error")
    if isinstance(exc, EngineError):
        return ApiError(500, f"{model_id}: {one_line(exc)}", code="engine_error")
    return ApiError(500, f"{model_id}: internal error ({type(exc).__name__}: {one_line(exc)})")


async def find_model(request, name: str):
    """The library model a request names; 404 in the API's shape when there is none."""
    model = await asyncio.to_thread(request.app.state.catalog.find, name)
    if model is None:
        raise ApiError(404, f"the model {name!r} is not in the library (GET /v1/models "
                            f"lists them)", param="model", code="model_not_found")
    request.state.model = model.id
    return model


async def start_generation(request, body, messages: list[dict], params: SamplingParams,
                           prompt: str | None = None, model=None, tools=None):
    """(served model, Generation, first event). Raises ApiError or ClientGone.
    model: found already (find_model); tools: specs for the chat template."""
    state = request.app.state
    model = model or await find_model(request, body.model)
    load = await asyncio.to_thread(state.pool.load_request, model, body.n_ctx)
    gen: Generation = state.pool.generation(load, messages, params, prompt, tools)
    try:
        first = await until_disconnect(request, gen.start(), gen.cancel)
    except ClientGone:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is an answer in the API's shape
        raise api_error_for(exc, model.id) from None
    return model, gen, first


async def whole_reply(request, model, gen, first):
    """(text, Done, logprob entries or None) of a request that is not streamed; the client
    going cancels it."""
    from .logprobs_shape import gather

    async def collect():
        tokens, event = [], first
        while not isinstance(event, Done):
            tokens.append(event)
            event = await gen.next()
        return "".join(t.text for t in tokens), event, gather(tokens)
    try:
        text, done, entries = await until_disconnect(request, collect(), gen.cancel)
    except ClientGone:
        raise
    except Exception as exc:  # noqa: BLE001 - the host died mid-reply
        raise api_error_for(exc, model.id) from None
    note_usage(request, done)
    return text, done, entries


def note_usage(request, done) -> None:
    """For the request log line."""
    request.state.prompt_tokens = done.prompt_tokens
    request.state.completion_tokens = done.completion_tokens
    request.state.finish = done.finish_reason


def sse(data: dict | str, event: str | None = None) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
