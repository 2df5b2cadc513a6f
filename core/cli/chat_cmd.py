"""`quantdesk chat MODEL --prompt TEXT`: one reply from a local GGUF, streamed to stdout."""
from __future__ import annotations

import argparse
import json
import sys

from quantdesk.core.cli import UserError


def _gpu_layers(value: str) -> str | int:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of layers, -1 (all) or 'auto'") from None
    if n < -1:
        raise argparse.ArgumentTypeError("expected a number of layers, -1 (all) or 'auto'")
    return n


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return n


def register(subparsers) -> None:
    p = subparsers.add_parser("chat", help="ask a local GGUF model one question",
                              description="Load MODEL in the engine host, send one prompt and "
                                          "print the reply as it is generated.")
    p.add_argument("model", metavar="MODEL", help="path of a .gguf file (first part of a split model)")
    p.add_argument("--prompt", required=True, help="the user message")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--max-tokens", type=_positive, default=512, help="reply length limit (512)")
    p.add_argument("--ctx", type=_positive, default=2048, help="context size in tokens (2048)")
    p.add_argument("--gpu-layers", type=_gpu_layers, default="auto",
                   help="layers to offload to the GPU: N, -1 for all, or auto (the planner's choice)")
    p.add_argument("--temperature", type=float, default=0.7, help="0 for greedy (0.7)")
    p.add_argument("--seed", type=int, default=-1, help="sampling seed (-1: random)")
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads (physical cores)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (text, token counts, tokens/s) instead of streaming")
    p.set_defaults(func=run)


def _auto_gpu_layers(info, n_ctx: int) -> int:
    try:
        from quantdesk.core.planner import plan_for_model
    except ImportError:      # no planner in this build: stay on the CPU
        return 0
    return int(plan_for_model(info, n_ctx=n_ctx).gpu_layers)


def run(args) -> int:
    from quantdesk.core.engine import Done, EngineClient, EngineError, SamplingParams
    from quantdesk.core.gguf import GGUFError, inspect_gguf

    try:
        info = inspect_gguf(args.model)
    except GGUFError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{args.model}: {exc.strerror or exc}") from None

    gpu_layers = _auto_gpu_layers(info, args.ctx) if args.gpu_layers == "auto" else args.gpu_layers
    messages = ([{"role": "system", "content": args.system}] if args.system else [])
    messages.append({"role": "user", "content": args.prompt})
    params = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed)

    client = EngineClient()
    pieces: list[str] = []
    done = None
    try:
        loaded = client.load(info.path, n_gpu_layers=gpu_layers, n_ctx=args.ctx,
                             n_threads=args.threads)
        for event in client.generate(messages, params):
            if isinstance(event, Done):
                done = event
            else:
                pieces.append(event.text)
                if not args.json:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
    except EngineError as exc:
        if not args.json and pieces:
            sys.stdout.write("\n")
        print(f"quantdesk: {exc}", file=sys.stderr)
        return 1
    finally:
        client.shutdown()

    if args.json:
        print(json.dumps({
            "text": "".join(pieces),
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "tokens_per_second": round(done.tokens_per_second, 2),
            "gpu_layers": loaded.n_gpu_layers,
            "finish_reason": done.finish_reason,
            "used_chat_template": done.used_chat_template,
            "n_ctx": done.n_ctx,
            "load_seconds": round(loaded.load_seconds, 3),
            "model": str(info.path),
        }, ensure_ascii=False))
    else:
        sys.stdout.write("\n")
        if not done.used_chat_template:
            print("quantdesk: this model has no chat template; a plain completion prompt was used",
                  file=sys.stderr)
        if sys.stderr.isatty():
            print(f"[{done.completion_tokens} tokens, {done.tokens_per_second:.1f} tokens/s]",
                  file=sys.stderr)
    return 0
