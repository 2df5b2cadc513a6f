"""The model manager's side of several machines: which workers a load really uses, and the split.

A LoadRequest names workers (`--rpc`, Settings > Machines). At resolve time each is asked for its
free memory (core.rpc.wire.probe: timeouts, no ggml); one that does not answer is left out with a
one-line note (the load goes on without it: a worker that died mid-reply does not block the next
load), and the rest are planned with the local GPU and CPU (core.planner.split). The resolved load
carries the workers used and the exact tensor_split, so the engine host follows the plan shown.
"""
from __future__ import annotations

import dataclasses


def ask_workers(endpoints) -> tuple[list, list[str]]:
    """(WorkerInfo of those that answered, one-line notes on those left out)."""
    from quantdesk.core.rpc.wire import WorkerError, probe
    infos, notes = [], []
    for endpoint in endpoints:
        try:
            infos.append(probe(endpoint))
        except WorkerError as exc:
            notes.append(f"left out: {exc}")
    return infos, notes


def split_plan(profile, hardware, plan, infos, *, n_ctx: int, forced: int | None,
               prompt_lookup: int = 0):
    """(SplitPlan, the local Plan rewritten to describe it) for `plan` (the local-only plan of
    the same load: its KV types and flash-attention choice are kept)."""
    from quantdesk.core.planner.plan import vram_budget
    from quantdesk.core.planner.split import plan_split
    split = plan_split(profile, hardware, infos, n_ctx=n_ctx, type_k=plan.kv_type_k,
                       type_v=plan.kv_type_v, flash_attn=plan.flash_attn, n_gpu_layers=forced,
                       prompt_lookup=prompt_lookup, gpu_budget=vram_budget(hardware))
    cpu = split.parts[-1]
    gpu = sum(p.bytes for p in split.parts if p.kind == "gpu")
    if not split.fits:
        fit = "no-fit"
    elif cpu.layers == 0:
        fit = "full-gpu"
    else:
        fit = "partial" if split.n_gpu_layers else "cpu"
    from quantdesk.core.planner.memory import estimate_memory
    mem = estimate_memory(profile, n_ctx=n_ctx, n_gpu_layers=split.n_gpu_layers,
                          type_k=plan.kv_type_k, type_v=plan.kv_type_v,
                          flash_attn=plan.flash_attn, prompt_lookup=prompt_lookup)
    local = dataclasses.replace(plan, gpu_layers=split.n_gpu_layers, fit=fit, ram_bytes=cpu.bytes,
                                vram_bytes=gpu, note=split.note, memory=mem)
    return split, local


def resolve_with_workers(request, profile, hardware, plan, forced):
    """The ResolvedLoad of a request naming workers: those that answer take layers first; when
    none does, the local plan with the notes saying why."""
    from .gpu_layers import llama_gpu_layers
    from .models import ResolvedLoad
    infos, notes = ask_workers(request.rpc_servers)
    if not infos:
        n = max(0, int(plan.gpu_layers)) if forced is None else llama_gpu_layers(request.gpu_layers)
        return ResolvedLoad(request, n, plan, "; ".join(notes + [f"auto: {plan.fit}"]))
    split, local = split_plan(profile, hardware, plan, infos, n_ctx=request.n_ctx,
                              forced=forced, prompt_lookup=request.prompt_lookup)
    note = "; ".join(notes + [f"split over {len(infos)} worker(s): {local.fit}"])
    return ResolvedLoad(request, split.n_gpu_layers, local, note,
                        workers=tuple(i.endpoint for i in infos),
                        tensor_split=tuple(split.tensor_split), split=split)
