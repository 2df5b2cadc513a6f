"""`quantdesk worker`: lend this machine's memory (and GPU) to another machine's model."""
from __future__ import annotations

import os
import sys

from quantdesk.core.cli import UserError, positive


def register(subparsers) -> None:
    from quantdesk.core.rpc.endpoints import DEFAULT_PORT
    p = subparsers.add_parser(
        "worker", help="serve this machine's memory to another machine's model (llama.cpp RPC)",
        description="Run llama.cpp's RPC server here until Ctrl-C. Another machine adds "
                    "HOST:PORT (chat/serve --rpc, or Settings > Machines) and llama.cpp puts "
                    "some of the model's layers here. The protocol is unauthenticated: "
                    "only trusted networks.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1: this machine only; any other "
                        "address needs --allow-remote)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port ({DEFAULT_PORT})")
    p.add_argument("--threads", type=positive(), default=None,
                   help="CPU threads for the layers computed here (half the logical CPUs)")
    p.add_argument("--mem", type=positive(), default=None, metavar="MB",
                   help="memory this worker offers, in MiB (default: what is free); clients "
                        "plan with it, llama.cpp does not enforce it")
    p.add_argument("--cache", action="store_true",
                   help="keep received tensors on disk, so the next load of the same model "
                        "sends hashes instead of data")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow listening beyond this machine (the protocol is unauthenticated)")
    p.set_defaults(func=run)


def run(args) -> int:
    from quantdesk.core.rpc.worker import WorkerSetupError, serve
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be from 1 to 65535, got {args.port}")
    try:
        code = serve(args.host, args.port, threads=args.threads, mem_mb=args.mem,
                     cache=args.cache, allow_remote=args.allow_remote)
    except WorkerSetupError as exc:
        raise UserError(str(exc)) from None
    # The server thread is blocked in C's accept(): end here instead of in interpreter teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
