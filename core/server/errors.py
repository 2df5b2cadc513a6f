"""Errors in each API's own shape. A handler raises ApiError; the app turns it into the body that
the caller's client library understands (OpenAI's {"error": {...}} or Anthropic's
{"type": "error", "error": {...}}), so the client raises its own typed exception with our message.
"""
from __future__ import annotations

from starlette.responses import JSONResponse

# OpenAI error "type" per HTTP status, and Anthropic's.
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                 404: "invalid_request_error", 413: "invalid_request_error",
                 500: "server_error", 503: "server_error"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    404: "not_found_error", 413: "request_too_large", 500: "api_error",
                    503: "overloaded_error"}


class ApiError(Exception):
    """An error answer: HTTP status, one-line message, and OpenAI's optional param/code."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def is_anthropic_path(path: str) -> bool:
    return path.rstrip("/").endswith("/v1/messages")


def openai_body(err: ApiError) -> dict:
    return {"error": {"message": err.message,
                      "type": _OPENAI_TYPES.get(err.status, "server_error"),
                      "param": err.param, "code": err.code}}


def anthropic_body(err: ApiError) -> dict:
    return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(err.status, "api_error"),
                                       "message": err.message}}


def error_body(err: ApiError, path: str) -> dict:
    return anthropic_body(err) if is_anthropic_path(path) else openai_body(err)


def error_response(err: ApiError, path: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return JSONResponse(error_body(err, path), status_code=err.status, headers=headers)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def validation_message(exc) -> tuple[str, str | None]:
    """A pydantic ValidationError as one line for the caller, and the first offending field."""
    parts, first = [], None
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body",))
        first = first or loc or None
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else ""), first
