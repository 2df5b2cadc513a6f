"""OpenAI-compatible POST /v1/embeddings: one pooled, normalised vector per input, as floats or
base64 (little-endian float32, what the OpenAI client asks for by default). The model is loaded
for embeddings: a host of its own, next to (or instead of, see --max-models) its chat host."""
from __future__ import annotations

import asyncio
import base64
import struct

from starlette.responses import JSONResponse

from .errors import ApiError
from .request_flow import api_error_for, parse, read_json
from .schemas import EmbeddingRequest

MAX_INPUTS = 256


async def embeddings(request):
    body = parse(EmbeddingRequest, await read_json(request))
    texts = [body.input] if isinstance(body.input, str) else body.input
    if len(texts) > MAX_INPUTS:
        raise ApiError(400, f"at most {MAX_INPUTS} inputs per request", param="input")
    if any(not t for t in texts):
        raise ApiError(400, "an input is empty", param="input")
    state = request.app.state
    model = await asyncio.to_thread(state.catalog.find, body.model)
    if model is None:
        raise ApiError(404, f"the model {body.model!r} is not in the library", param="model",
                       code="model_not_found")
    request.state.model = model.id
    load = await asyncio.to_thread(state.pool.load_request, model, body.n_ctx, True)
    try:
        vectors, tokens = await state.pool.embed(load, texts)
    except Exception as exc:  # noqa: BLE001 - an answer in the API's shape
        raise api_error_for(exc, model.id) from None
    if body.dimensions is not None and body.dimensions != len(vectors[0]):
        raise ApiError(400, f"{model.id} makes {len(vectors[0])}-dimensional embeddings; "
                            f"dimensions cannot change that", param="dimensions")
    request.state.prompt_tokens, request.state.completion_tokens = tokens, 0

    def encode(v):
        if body.encoding_format == "float":
            return v
        return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode("ascii")
    return JSONResponse({"object": "list", "model": model.id,
                         "data": [{"object": "embedding", "index": i, "embedding": encode(v)}
                                  for i, v in enumerate(vectors)],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
