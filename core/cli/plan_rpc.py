"""`quantdesk plan MODEL --rpc HOST:PORT,...`: where a chat load of MODEL would put its layers
(each worker, the local GPU, this CPU), before loading anything.

The plan is the model manager's own (ModelManager.resolve, the call a chat or server load
makes): the same LoadRequest as `chat --rpc` builds (core.runtime.chat.load_request), each
worker asked for its free memory with core.rpc.wire's timeouts, one that does not answer left
out with one line naming it. Only a GGUF: an HF folder is not what a chat loads.
"""
from __future__ import annotations

import json
import os
import sys

from quantdesk.core.cli import UserError


def resolve_split(args, hardware):
    """The ResolvedLoad a chat with these options would load (nothing is loaded)."""
    from quantdesk.core.runtime.chat import ChatError, load_request
    from quantdesk.core.runtime.models import ModelManager
    kv_k, kv_v = args.kv_type or ("f16", "f16")
    try:   # the settings `chat` passes (its default GPU layers: the planner's "auto")
        request = load_request(args.model, {
            "n_ctx": args.ctx, "n_gpu_layers": "auto", "kv_type_k": kv_k, "kv_type_v": kv_v,
            "flash_attn": args.flash_attn, "rpc_servers": list(args.rpc),
            "mmproj": "" if args.mmproj.strip().lower() in ("none", "") else args.mmproj})
    except ChatError as exc:
        raise UserError(str(exc)) from None
    return ModelManager(hardware=lambda: hardware).resolve(request)


def run(args, hardware) -> int:
    from pathlib import Path
    from quantdesk.core.gguf import GGUFError, inspect_gguf

    if Path(args.model).is_dir():
        raise UserError(f"{args.model} is a folder: --rpc plans the load of a GGUF file "
                        f"(quantize an HF model folder first, or plan it without --rpc)")
    try:
        inspect_gguf(args.model)
    except GGUFError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{args.model}: {exc.strerror or exc}") from None
    resolved = resolve_split(args, hardware)
    if resolved.plan is None:
        raise UserError(f"{args.model}: cannot be planned ({resolved.plan_error})")
    for line in resolved.left_out:
        print(f"quantdesk: left out: {line}", file=sys.stderr)
    data = {"model": resolved.request.path, "n_ctx": resolved.n_ctx,
            "workers": list(resolved.request.rpc_servers),
            "used": list(resolved.workers), "left_out": list(resolved.left_out),
            "gpu_layers": resolved.n_gpu_layers, "note": resolved.note,
            "split": resolved.split.to_json() if resolved.split is not None else None,
            "plan": resolved.to_json()}
    print(json.dumps(data, indent=2) if args.json else format_split(data))
    # none of the machines asked for can take part: say so in the status too
    return 0 if resolved.split is not None else 1


def _size(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def format_split(data: dict) -> str:
    split = data["split"]
    if split is None:
        return (f"No worker answered: a chat load of {data['model']} would stay on this "
                f"machine ({data['gpu_layers']} GPU layers; {data['note']}).")
    n_layers = sum(p["layers"] for p in split["parts"])
    rows = [f"{os.path.basename(data['model'])} over {len(data['used'])} worker(s) at context "
            f"{data['n_ctx']}, as a chat load with --rpc would place it:",
            f"{'device':<24} {'layers':>6} {'planned':>10} {'offers':>10}"]
    for p in split["parts"]:
        name = "this CPU (RAM)" if p["kind"] == "cpu" else p["name"]
        rows.append(f"{name:<24} {p['layers']:>6} {_size(p['bytes']):>10} "
                    f"{_size(p['budget']):>10}")
    rows.append(f"{split['n_gpu_layers']} of {n_layers} layers leave the CPU (tensor_split "
                f"{','.join(map(str, split['tensor_split']))})"
                + ("" if split["fits"] else "; does not fit"))
    return "\n".join(rows)
