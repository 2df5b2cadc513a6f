"""`quantdesk chat MODEL [--image PATH] "question"`: one reply from a local GGUF, streamed to
stdout. With --image, the model reads the image through its vision projector (--mmproj FILE, or
an mmproj*.gguf beside the model that fits it)."""
from __future__ import annotations

import argparse
import json
import sys

from quantdesk.core.cli import UserError, positive


def _gpu_layers(value: str):
    from quantdesk.core.runtime.gpu_layers import parse_gpu_layers
    try:
        return parse_gpu_layers(value)   # -1 keeps meaning "all", as it always did here
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of layers, 'auto' or 'all' "
                                         "(-1 also means all)") from None




def kv_types(value: str) -> tuple[str, str]:
    """--kv-type TYPE (K and V) or K,V -> (type_k, type_v)."""
    from quantdesk.core.engine.kv_cache import parse_kv_type
    parts = [v.strip() for v in value.split(",")]
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected TYPE or K_TYPE,V_TYPE, got {value!r}")
    try:
        k = parse_kv_type(parts[0])
        return k, parse_kv_type(parts[-1])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def flash_attn(value: str) -> str:
    from quantdesk.core.engine.kv_cache import parse_flash_attn
    try:
        return parse_flash_attn(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_kv_options(p) -> None:
    """--kv-type and --flash-attn, as `chat` and `plan` take them."""
    from quantdesk.core.engine.kv_cache import DEFAULT_FLASH_ATTN, KV_TYPES
    p.add_argument("--kv-type", type=kv_types, default=None, metavar="TYPE[,V_TYPE]",
                   help=f"KV-cache type for K and V, or K,V ({', '.join(KV_TYPES)}; default f16). "
                        "A quantized V cache needs flash attention (on or auto)")
    p.add_argument("--flash-attn", type=flash_attn, default=DEFAULT_FLASH_ATTN,
                   metavar="{on,off,auto}",
                   help=f"flash attention (default {DEFAULT_FLASH_ATTN}: llama.cpp decides)")


def rpc_servers(value: str) -> tuple[str, ...]:
    from quantdesk.core.rpc.endpoints import EndpointError, parse_endpoints
    try:
        return parse_endpoints(value)
    except EndpointError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_rpc_option(p) -> None:
    """--rpc HOST:PORT,...: workers (`quantdesk worker`) that hold layers, as `chat` and `serve`
    take it."""
    p.add_argument("--rpc", type=rpc_servers, default=(), metavar="HOST:PORT[,HOST:PORT...]",
                   help="workers started with `quantdesk worker` on other machines: the planner "
                        "puts layers on them first (a worker that does not answer is left out)")


def register(subparsers) -> None:
    p = subparsers.add_parser("chat", help="ask a local GGUF model one question",
                              description="Load MODEL in the engine host, send one prompt and "
                                          "print the reply as it is generated.")
    p.add_argument("model", metavar="MODEL", help="path of a .gguf file (first part of a split model)")
    p.add_argument("question", nargs="?", default=None, metavar="QUESTION",
                   help="the user message (or --prompt)")
    p.add_argument("--prompt", default=None, help="the user message")
    p.add_argument("--image", action="append", default=[], metavar="PATH",
                   help="an image the model reads with the message (PNG, JPEG, BMP, GIF; "
                        "repeat for several); needs a vision projector")
    p.add_argument("--mmproj", default="auto", metavar="FILE",
                   help="vision projector GGUF for --image (default auto: an mmproj*.gguf "
                        "beside the model that fits it; none: no projector)")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--max-tokens", type=positive(), default=512, help="reply length limit (512)")
    p.add_argument("--ctx", type=positive(), default=None,
                   help="context size in tokens (default: the model's load settings, else 2048)")
    p.add_argument("--gpu-layers", type=_gpu_layers, default=None,
                   help="layers to offload to the GPU: N, all (or -1), or auto (the planner's choice, "
                        "for the context given by --ctx; default: the model's load settings, else auto)")
    p.add_argument("--temperature", type=float, default=0.7, help="0 for greedy (0.7)")
    p.add_argument("--seed", type=int, default=-1, help="sampling seed (-1: random)")
    p.add_argument("--threads", type=positive(), default=None, help="CPU threads (physical cores)")
    add_kv_options(p)
    p.set_defaults(flash_attn=None)   # not given: the model's load settings, else the default
    add_rpc_option(p)
    p.add_argument("--prompt-lookup", type=int, default=0, metavar="N",
                   help="prompt-lookup decoding: draft up to N tokens copied from the "
                        "conversation per step (0: off; helps when the reply repeats the prompt)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (text, token counts, tokens/s) instead of streaming")
    p.set_defaults(func=run, late_positional="question")


def run(args) -> int:
    from pathlib import Path

    from quantdesk.core.cancel import CancelToken
    from quantdesk.core.chatstore import ChatStore
    from quantdesk.core.engine import EngineError, Token
    from quantdesk.core.gguf import GGUFError, inspect_gguf
    from quantdesk.core.runtime import ChatSession, ModelLoaded, ModelManager, ModelPlanned

    from quantdesk.core.runtime.chat import (LOAD_DEFAULTS, ChatError, load_request,
                                             model_load_settings)
    if args.question is not None and args.prompt is not None:
        raise UserError("give the message once: as QUESTION or as --prompt, not both")
    question = args.prompt if args.prompt is not None else args.question
    if question is None:
        raise UserError("no message: give QUESTION (or --prompt TEXT)")
    kv_k, kv_v = args.kv_type or (None, None)
    mmproj = "" if args.mmproj.strip().lower() in ("none", "") else args.mmproj   # "": none
    given = {"n_ctx": args.ctx, "n_gpu_layers": args.gpu_layers, "kv_type_k": kv_k,
             "kv_type_v": kv_v, "flash_attn": args.flash_attn}
    # An option not given comes from the model's load settings (Library "Load settings…",
    # `quantdesk model-settings`), as in the window and the server, else the CLI's defaults.
    load = {**LOAD_DEFAULTS, **model_load_settings(Path(args.model)),
            **{k: v for k, v in given.items() if v is not None},
            "prompt_lookup": args.prompt_lookup, "rpc_servers": list(args.rpc), "mmproj": mmproj}
    try:   # options llama.cpp would refuse: one line, before anything loads
        request = load_request(args.model, load)
    except ChatError as exc:
        raise UserError(str(exc)) from None
    if args.image and request.mmproj is None:
        raise UserError(f"{Path(args.model).name} has no vision projector: give one with "
                        f"--mmproj FILE (an mmproj*.gguf made for this model)"
                        if mmproj else "--image needs a vision projector, and --mmproj is none")
    try:
        info = inspect_gguf(args.model)
    except GGUFError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{args.model}: {exc.strerror or exc}") from None

    # One reply in an in-memory conversation: the same rules (GPU layers, context, messages) as
    # the window's chat, through the same model manager, and nothing saved.
    models = ModelManager()
    store = ChatStore(Path(":memory:"))
    session = ChatSession(store, models)
    session.new_conversation(system_prompt=args.system, model_path=info.path, settings={
        "n_threads": args.threads,
        "temperature": args.temperature, "max_tokens": args.max_tokens, "seed": args.seed,
        **load})
    loaded = []

    def report(event) -> None:
        if isinstance(event, ModelLoaded):
            loaded.append(event.result)
        elif isinstance(event, ModelPlanned):   # a --rpc worker that did not answer: say so
            for part in event.resolved.note.split("; "):
                if part.startswith("left out: "):
                    print(f"quantdesk: {part}", file=sys.stderr)
        elif isinstance(event, Token) and not args.json:
            sys.stdout.write(event.text)
            sys.stdout.flush()

    try:
        reply = session.send(question, images=args.image)
    except ChatError as exc:
        models.shutdown()
        store.close()
        raise UserError(str(exc)) from None
    try:
        done = reply.run(report, CancelToken())
    except EngineError as exc:
        if not args.json and reply.text:
            sys.stdout.write("\n")
        print(f"quantdesk: {exc}", file=sys.stderr)
        # The file's fault (its chat template) is bad input, like a corrupt file: status 2.
        from quantdesk.core.engine import ModelFileError
        return 2 if isinstance(exc, ModelFileError) else 1
    finally:
        models.shutdown()
        store.close()

    if args.json:
        print(json.dumps({
            "text": reply.text,
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "tokens_per_second": round(done.tokens_per_second, 2),
            "gpu_layers": loaded[0].n_gpu_layers,
            "finish_reason": done.finish_reason,
            "used_chat_template": done.used_chat_template,
            "n_ctx": done.n_ctx,
            "load_seconds": round(loaded[0].load_seconds, 3),
            "model": str(info.path),
            "plan": reply.host.resolved.to_json(),   # what the model manager decided
            "placement": loaded[0].placement,          # what llama.cpp did, per device
            "mmproj": loaded[0].mmproj or None,
            "image_tokens": done.image_tokens,
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
