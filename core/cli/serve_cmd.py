"""`quantdesk serve`: the OpenAI- and Anthropic-compatible local API server, until Ctrl-C."""
from __future__ import annotations

import argparse
import os
import sys

from quantdesk.core.cli import UserError, positive


def _seconds_or_never(value: str) -> float | None:
    if value.lower() in ("0", "never", "none"):
        return None
    return positive(float)(value)


def _budget(value: str):
    if value.strip().lower() in ("auto", "none"):
        return None if value.strip().lower() == "none" else "auto"
    from quantdesk.core.cli.plan_cmd import parse_bytes
    n = parse_bytes(value)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {value!r}")
    return n


def register(subparsers) -> None:
    from quantdesk.core.server.config import DEFAULT_HOST, DEFAULT_PORT
    p = subparsers.add_parser(
        "serve", help="serve the library's models over an OpenAI/Anthropic-compatible HTTP API",
        description="Serve the library's models (ids: `quantdesk serve` prints them; GET /v1/models "
                    "lists them) at http://HOST:PORT/v1 until Ctrl-C. A model loads on its first "
                    "request, with its library settings (`quantdesk model-settings`), else the "
                    "planner's GPU layers. One log line per request on stdout.")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to bind ({DEFAULT_HOST}: this machine only; any other address "
                        f"needs --api-key)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port ({DEFAULT_PORT})")
    p.add_argument("--api-key", default=os.environ.get("QUANTDESK_API_KEY"),
                   help="key clients must send (Authorization: Bearer KEY or x-api-key: KEY); "
                        "default: $QUANTDESK_API_KEY")
    p.add_argument("--ttl", type=_seconds_or_never, default=600.0,
                   help="unload a model idle for this many seconds (600; 0: never)")
    p.add_argument("--max-models", type=positive(int), default=3,
                   help="models loaded at once at most; the least recently used goes first (3)")
    p.add_argument("--memory-budget", type=_budget, default="auto", metavar="SIZE|auto|none",
                   help="memory the loaded models may take together, as the planner predicts "
                        "each load (RAM + VRAM); a load that would go over unloads the least "
                        "recently used first. auto (default): free RAM + VRAM at start")
    p.add_argument("--ctx", type=positive(int), default=None,
                   help="context size of a load when the request has no n_ctx (4096, at most the "
                        "model's own)")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                   help="allow browser requests from ORIGIN (repeat for more; none by default)")
    p.add_argument("--max-body-mb", type=positive(float), default=4.0,
                   help="largest request body in MiB (4)")
    p.add_argument("--threads", type=positive(int), default=None, help="CPU threads per model")
    from quantdesk.core.cli.chat_cmd import add_rpc_option
    add_rpc_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from quantdesk.core.server import ConfigError, ServerConfig, serve_forever
    from quantdesk.core.server.pool import DEFAULT_CTX

    try:
        config = ServerConfig(host=args.host, port=args.port, api_key=args.api_key or None,
                              ttl=args.ttl, max_models=args.max_models,
                              memory_budget=args.memory_budget,
                              n_ctx=args.ctx or DEFAULT_CTX, cors_origins=tuple(args.cors),
                              max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                              n_threads=args.threads, rpc_servers=args.rpc).check()
    except ConfigError as exc:
        raise UserError(str(exc)) from None

    def log(record) -> None:
        print(record.line(), flush=True)

    def ready() -> None:
        key = " (API key required)" if config.api_key else ""
        print(f"quantdesk: serving at {config.base_url}{key}; Ctrl-C stops", flush=True)

    if not serve_forever(config, listeners=[log], on_ready=ready):
        print(f"quantdesk: could not listen on {config.host}:{config.port} (is another server "
              f"using the port?)", file=sys.stderr)
        return 1
    print("quantdesk: stopped", flush=True)
    return 0
