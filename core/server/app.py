"""The ASGI app: Starlette routes over the model manager and the library, with the API key check,
optional CORS, a request log (one RequestRecord per request, to every listener) and errors in
each API's own shape (never a traceback in a body).
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import anthropic_api, embeddings_api, openai_api
from .catalog import ModelCatalog
from .config import ServerConfig
from .errors import ApiError, error_body, error_response, one_line
from .pool import ModelPool
from .request_flow import ClientGone, read_json

OPEN_PATHS = {"/health"}   # answered without the key: says only that the server is up


@dataclass(frozen=True)
class RequestRecord:
    """One line of the request log."""
    at: float                  # time.time() when it ended
    client: str
    method: str
    path: str
    status: int
    seconds: float
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str = ""

    def line(self) -> str:
        parts = [self.client, self.method, self.path, str(self.status), f"{self.seconds:.2f}s"]
        if self.model:
            parts.append(self.model)
        if self.prompt_tokens is not None:
            parts.append(f"{self.prompt_tokens}+{self.completion_tokens} tokens")
        if self.error:
            parts.append(f"error: {self.error}")
        return " ".join(parts)


class RequestLog:
    """Pure ASGI middleware: measures each request and hands a RequestRecord to the listeners."""

    def __init__(self, app, listeners: list[Callable[[RequestRecord], None]]):
        self.app, self.listeners = app, listeners

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [0]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, send_status)
        except BaseException:
            status[0] = status[0] or 500
            raise
        finally:
            st = scope.get("state") or {}
            client = scope.get("client") or ("-", 0)
            record = RequestRecord(time.time(), str(client[0]), scope["method"], scope["path"],
                                   status[0] or 499, time.perf_counter() - start,
                                   st.get("model", ""), st.get("prompt_tokens"),
                                   st.get("completion_tokens"), st.get("error", ""))
            for listener in list(self.listeners):
                try:
                    listener(record)
                except Exception:  # noqa: BLE001 - a log listener never breaks a request
                    pass


class ApiKeyCheck:
    """Pure ASGI middleware: with a key set, every path but /health needs it, as
    `Authorization: Bearer KEY` (OpenAI clients) or `x-api-key: KEY` (Anthropic clients)."""

    def __init__(self, app, api_key: str | None):
        self.app, self.key = app, (api_key or "").encode()

    def _allowed(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-api-key", b"")
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = given or auth[7:].strip()
        return bool(given) and hmac.compare_digest(given, self.key)

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or not self.key or scope["path"] in OPEN_PATHS
                or self._allowed(scope)):
            return await self.app(scope, receive, send)
        err = ApiError(401, "invalid or missing API key (send it as 'Authorization: Bearer KEY' "
                            "or 'x-api-key: KEY')", code="invalid_api_key")
        await error_response(err, scope["path"])(scope, receive, send)


# ---- small endpoints -----------------------------------------------------------------------------
async def health(request):
    return JSONResponse({"status": "ok"})


async def loaded_models(request):
    """Quantdesk's own: the loaded hosts (the Server page's list; tests watch `busy`)."""
    from quantdesk.core.runtime.models import predicted_bytes
    state = request.app.state
    models = {str(m.path): m.id for m in await asyncio.to_thread(state.catalog.models)}
    now = time.monotonic()
    return JSONResponse({"data": [
        {"id": models.get(h.path, h.path), "pid": h.pid, "busy": h.busy,
         "n_ctx": h.resolved.n_ctx, "gpu_layers": h.resolved.n_gpu_layers,
         "kv_type_k": h.result.type_k, "kv_type_v": h.result.type_v,
         "flash_attn": h.result.flash_attn, "planned_bytes": predicted_bytes(h.resolved),
         "note": h.resolved.note, "embedding": h.resolved.request.embedding,
         "idle_seconds": round(now - h.last_used, 3)}
        for h in state.pool.manager.loaded()]})


async def unload_model(request):
    data = await read_json(request)
    state = request.app.state
    name = data.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "model: a library id is required", param="model")
    model = await asyncio.to_thread(state.catalog.find, name)
    if model is None:
        raise ApiError(404, f"the model {name!r} is not in the library", param="model",
                       code="model_not_found")
    n = await asyncio.to_thread(state.pool.manager.unload, str(model.path))
    return JSONResponse({"model": model.id, "unloaded": n})


# ---- errors --------------------------------------------------------------------------------------
async def _api_error(request: Request, exc: ApiError):
    request.state.error = exc.message
    return error_response(exc, request.url.path)


async def _client_gone(request: Request, exc: ClientGone):
    request.state.error = "client disconnected"
    return Response(status_code=499)


async def _http_error(request: Request, exc: HTTPException):
    err = ApiError(exc.status_code, str(exc.detail))
    return JSONResponse(error_body(err, request.url.path), status_code=exc.status_code)


async def _crash(request: Request, exc: Exception):
    err = ApiError(500, f"internal error ({type(exc).__name__}: {one_line(exc)})")
    return JSONResponse(error_body(err, request.url.path), status_code=500)


def create_app(config: ServerConfig, manager=None, library=None,
               listeners: list[Callable[[RequestRecord], None]] | None = None) -> Starlette:
    """manager: a shared core.runtime.ModelManager (the window's); None: the app makes its own
    (max_models from the config) and shuts it down when it stops. library: a LibrarySession."""
    from quantdesk.core.runtime import LibrarySession, ModelManager
    config.check()
    own_manager = manager is None
    from quantdesk.core.runtime.model_settings import ModelSettings
    manager = manager or ModelManager(max_models=config.max_models,
                                      memory_budget=config.budget_bytes())
    pool = ModelPool(manager, ttl=config.ttl, default_ctx=config.n_ctx,
                     n_threads=config.n_threads, rpc_servers=config.rpc_servers,
                     settings=ModelSettings())
    listeners = listeners if listeners is not None else []

    @contextlib.asynccontextmanager
    async def lifespan(app):
        reaper = asyncio.create_task(pool.reap_forever())
        try:
            yield
        finally:
            reaper.cancel()
            if own_manager:
                await asyncio.to_thread(manager.shutdown)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", openai_api.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", openai_api.get_model, methods=["GET"]),
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Route("/v1/completions", openai_api.completions, methods=["POST"]),
        Route("/v1/messages", anthropic_api.messages, methods=["POST"]),
        Route("/v1/embeddings", embeddings_api.embeddings, methods=["POST"]),
        Route("/quantdesk/loaded", loaded_models, methods=["GET"]),
        Route("/quantdesk/unload", unload_model, methods=["POST"]),
    ]
    middleware = []
    if config.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                                     allow_methods=["GET", "POST", "OPTIONS"],
                                     allow_headers=["*"]))
    middleware += [Middleware(RequestLog, listeners=listeners),
                   Middleware(ApiKeyCheck, api_key=config.api_key)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={ApiError: _api_error, ClientGone: _client_gone,
                                        HTTPException: _http_error, Exception: _crash})
    app.state.config = config
    app.state.pool = pool
    app.state.catalog = ModelCatalog(library or LibrarySession())
    app.state.max_body_bytes = config.max_body_bytes
    app.state.listeners = listeners
    return app
