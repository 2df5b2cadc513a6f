"""`quantdesk plan MODEL [--ctx N] [--vram BYTES] [--ram BYTES] [--kv-type T[,V]]
[--flash-attn on|off|auto] [--mmproj FILE|none] [--json]`: which quant of this model (a GGUF or an
HF model folder) fits, with how many GPU layers, and which one to use; then the context each
KV-cache type reaches. A GGUF's vision projector (--mmproj, default: the mmproj*.gguf beside it
that fits, as a chat load finds it) is counted in every row and shown on its own line.
The figures are the quantize session's (core/runtime/quantize.py), as on the Quantize page. When
nothing fits at --ctx, the recommendation may propose a smaller KV cache (q8_0, then q4_0),
labelled with what it saves and costs, before it lowers the context.
With --rpc HOST:PORT,... (a GGUF): the split a chat load would use over those workers instead
(plan_rpc.py)."""
from __future__ import annotations

import argparse
import json
import os

from quantdesk.core.cli import UserError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """'8589934592', '8G', '8 GiB', '512MiB' -> bytes (binary units)."""
    s = text.strip().lower().replace(" ", "").replace("_", "")
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    try:
        value = float(num)
        unit = _UNITS[s[len(num):]]
    except (ValueError, KeyError):
        # argparse turns this into one usage line and exit status 2
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use bytes, or a number with K/M/G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"size must not be negative: {text!r}")
    return int(value * unit)


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="show which quant types fit this machine",
                              description="Plan a GGUF model or an HF model folder: per quant "
                                          "type the size (the tensor bytes `quantize` writes), "
                                          "RAM and VRAM needed at the context length, GPU "
                                          "layers, fit, and the recommended type.")
    p.add_argument("model", metavar="MODEL", help="path to a .gguf file or an HF model folder")
    p.add_argument("--ctx", type=int, default=4096, help="context length (default 4096)")
    p.add_argument("--vram", type=parse_bytes, help="plan with this much free VRAM (bytes or 8G)")
    p.add_argument("--ram", type=parse_bytes, help="plan with this much free RAM (bytes or 16G)")
    p.add_argument("--mmproj", default="auto", metavar="FILE",
                   help="vision projector counted with a GGUF model (default auto: an "
                        "mmproj*.gguf beside it that fits; none: no projector)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    from .chat_cmd import add_kv_options, rpc_servers
    add_kv_options(p)
    p.add_argument("--rpc", type=rpc_servers, default=(), metavar="HOST:PORT[,HOST:PORT...]",
                   help="workers (`quantdesk worker`) on other machines: show how a chat load "
                        "of this GGUF would split its layers over them, the local GPU and this "
                        "CPU (a worker that does not answer is named and left out)")
    p.set_defaults(func=run)


def run(args) -> int:
    from quantdesk.core.convert import ConvertError
    from quantdesk.core.hardware import detect
    from quantdesk.core.runtime.quantize import plan_source

    if args.ctx < 1:
        raise UserError(f"--ctx must be positive, got {args.ctx}")
    from quantdesk.core.engine.kv_cache import PROPOSED_KV_TYPES, check_kv_options, KV_TYPES
    from quantdesk.core.planner import retype
    from quantdesk.core.planner.kv_fit import KV_TABLE_TYPES, context_by_kv_type

    kv_k, kv_v = args.kv_type or ("f16", "f16")
    try:
        check_kv_options(kv_k, kv_v, args.flash_attn)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    load = dict(type_k=kv_k, type_v=kv_v, flash_attn=args.flash_attn)
    # Only caches smaller than the one asked for are proposed to keep the context.
    proposals = tuple(t for t in PROPOSED_KV_TYPES
                      if KV_TYPES.index(t) > max(KV_TYPES.index(kv_k), KV_TYPES.index(kv_v)))
    hw = detect().with_overrides(vram=args.vram, ram=args.ram)
    if args.rpc:   # the split a chat load would use, not the quant table
        from .plan_rpc import run as run_rpc
        return run_rpc(args, hw)
    projector = _projector(args.model, args.mmproj, args.flash_attn)
    try:
        plan = plan_source(args.model, hardware=hw, n_ctx=args.ctx, kv_types=proposals,
                           projector=projector, **load)
    except ConvertError as exc:
        raise UserError(str(exc)) from None
    rec = plan.recommended
    kv_for = rec.type if rec else plan.own_type
    kv_rows = []
    if kv_for:   # the context each KV type reaches, for the recommended type (or the file's own)
        table = tuple(dict.fromkeys(KV_TABLE_TYPES + tuple(dict.fromkeys((kv_k, kv_v)))))
        kv_rows = [r.to_json() for r in context_by_kv_type(
            retype(plan.profile, kv_for), hw, types=table, flash_attn=args.flash_attn,
            projector=projector)]
    data = {
        "model": plan.path, "kind": plan.kind, "type": plan.own_type, "n_ctx": args.ctx,
        "kv_type": [kv_k, kv_v], "flash_attn": args.flash_attn,
        "hardware": hw.to_json(),
        "options": [_option(p, plan.own_type) for p in plan.plans],
        "recommended": _option(rec, plan.own_type) if rec else None,
        "context_by_kv_type": {"type": kv_for, "rows": kv_rows},
        "projector": projector.to_json() if projector else None,
    }
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_plan(data))
    return 0


def _projector(model: str, chosen: str, flash_attn: str):
    """The projector a chat load of `model` would take (core.runtime.LoadRequest's rules), priced
    by the planner; None for none, an HF folder, or no projector beside the model."""
    import os
    from quantdesk.core.engine.projector import ProjectorError, check_projector, find_projector
    from quantdesk.core.planner import PlannerError
    from quantdesk.core.planner.projector import projector_cost
    chosen = (chosen or "").strip()
    if chosen.lower() in ("", "none") or not os.path.isfile(model):
        if chosen.lower() not in ("", "none", "auto"):
            raise UserError("--mmproj is for a GGUF model file (an HF folder has no projector "
                            "file yet)")
        return None
    try:
        path = find_projector(model) if chosen.lower() == "auto" else \
            check_projector(model, chosen)
        return projector_cost(path, flash_attn=flash_attn != "off") if path else None
    except (ProjectorError, PlannerError) as exc:
        raise UserError(str(exc)) from None


def _option(plan, file_type: str | None) -> dict:
    d = plan.to_json()
    d["this_file"] = plan.type == file_type
    return d


def _layers(o: dict) -> str:
    # n_layer + 1 offloads the output matrix too: show it as "all".
    return "all" if o["gpu_layers"] > o["n_layer"] else f"{o['gpu_layers']}/{o['n_layer']}"


def format_plan(data: dict) -> str:
    def mib(n):
        return f"{n / (1 << 20):,.0f} MiB"
    rows = [f"{'type':<8} {'size':>10} {'RAM':>10} {'VRAM':>10} {'GPU layers':>10}  fit"]
    for o in data["options"]:
        mark = "*" if o["this_file"] else " "
        rows.append(f"{o['type']:<7}{mark} {mib(o['size_bytes']):>10} {mib(o['ram_bytes']):>10} "
                    f"{mib(o['vram_bytes']):>10} {_layers(o):>10}  {o['fit']}")
    rec = data["recommended"]
    rows.append("")
    rows.append("* this file; other types are estimates of the same model" if data["type"] else
                "sizes are the tensor bytes `quantdesk quantize` writes for each type")
    rows.append(f"Recommended: {rec['type']} - {rec['note']}" if rec else
                "Recommended: none - no type fits this machine")
    proj = data.get("projector")
    if proj:
        rows.append(f"Vision projector {os.path.basename(proj['path'])}: "
                    f"{mib(proj['weights_bytes'] + proj['compute_bytes'])} (weights + compute "
                    f"buffer: in VRAM with any GPU layer, else RAM) + {mib(proj['host_bytes'])} "
                    f"RAM; counted above")
    kv = data.get("context_by_kv_type") or {}
    if kv.get("rows"):
        rows.append("")
        rows.append(f"Context reachable per KV-cache type ({kv['type']}, flash attention "
                    f"{data['flash_attn']}):")
        rows.append(f"{'KV type':<8} {'per token':>10} {'max context':>12}  {'fit':<9} quality")
        for r in kv["rows"]:
            reach = f"{r['n_ctx']:,}" if r["n_ctx"] else "none"
            if r["n_ctx"] and r["n_ctx"] >= r["n_ctx_limit"]:
                reach += " (all)"   # the model's training context
            rows.append(f"{r['kv_type']:<8} {r['bytes_per_token'] / 1024:>7,.1f} KiB "
                        f"{reach:>12}  {r['fit']:<9} {r['quality']}")
    return "\n".join(rows)
