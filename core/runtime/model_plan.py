"""ResolvedLoad: a LoadRequest with every choice made, and how it is planned.

resolve_load decides "auto" GPU layers with the planner for exactly the context that is loaded
(a manual count or "all" is planned too, so the plan shown is the plan followed); workers take
layers first (workers.py). predicted_bytes is what the model manager's memory budget counts.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .gpu_layers import ALL, AUTO, llama_gpu_layers
from .model_request import LoadRequest


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__



@dataclass(frozen=True)
class ResolvedLoad:
    """A request with every choice made: what the engine host is asked to load."""
    request: LoadRequest
    n_gpu_layers: int          # llama.cpp's integer (-1: all layers)
    plan: object | None        # core.planner.Plan for exactly this load; None: no plan possible
    note: str = ""             # how "auto" was decided, one line ("auto: partial")
    plan_error: str = ""       # why there is no plan, one line
    workers: tuple = ()        # the request's workers that answered: the load registers these
    tensor_split: tuple = ()   # layers per device (workers, then local GPU); () : llama.cpp's
    split: object | None = None   # core.planner.split.SplitPlan when workers take part

    @property
    def n_ctx(self) -> int:
        return self.request.n_ctx

    @property
    def left_out(self) -> list[str]:
        """One line per requested worker that did not answer (core.runtime.workers' notes)."""
        prefix = "left out: "
        return [p[len(prefix):] for p in self.note.split("; ") if p.startswith(prefix)]

    @property
    def key(self) -> tuple:
        """Same key, same host: model file, context, layers, threads, KV types, flash attention
        and prompt lookup."""
        r = self.request
        return (r.path, r.n_ctx, self.n_gpu_layers, r.n_threads, r.kv_type_k, r.kv_type_v,
                r.flash_attn, r.prompt_lookup, r.embedding, self.workers, self.tensor_split,
                r.mmproj)

    def to_json(self) -> dict:
        plan = self.plan
        return {"path": self.request.path, "n_ctx": self.n_ctx,
                "gpu_layers_requested": self.request.gpu_layers,
                "gpu_layers": self.n_gpu_layers, "note": self.note,
                "kv_type_k": self.request.kv_type_k, "kv_type_v": self.request.kv_type_v,
                "flash_attn": self.request.flash_attn,
                "prompt_lookup": self.request.prompt_lookup,
                "fit": plan.fit if plan else None,
                "n_layer": plan.n_layer if plan else None,
                "planned_gpu_layers": plan.gpu_layers if plan else None,
                "planned_ram_bytes": plan.ram_bytes if plan else None,
                "planned_vram_bytes": plan.vram_bytes if plan else None,
                "plan_note": plan.note if plan else None,
                "workers": list(self.workers),
                "mmproj": self.request.mmproj,
                "split": self.split.to_json() if self.split is not None else None}


def request_projector(request: LoadRequest):
    """The planner's cost of the request's vision projector (core.planner.projector), or None.
    libmtmd follows the model's flash-attention choice; "auto" is on where it matters (CPU)."""
    if not request.mmproj:
        return None
    from quantdesk.core.planner.projector import projector_cost
    return projector_cost(request.mmproj, flash_attn=request.flash_attn != "off")


def predicted_bytes(resolved: ResolvedLoad) -> int:
    """What a load costs by the planner (RAM + VRAM, the projector's included); without a plan,
    the files' sizes."""
    plan = resolved.plan
    extra = 0
    if resolved.request.mmproj and plan is None:
        try:
            extra = os.path.getsize(resolved.request.mmproj)
        except OSError:
            pass
    if plan is not None:
        return int(plan.ram_bytes) + int(plan.vram_bytes) + extra
    try:
        return os.path.getsize(resolved.request.path) + extra
    except OSError:
        return extra


def forced_gpu_layers(request: LoadRequest, n_layer: int) -> int | None:
    """The layer count the planner must follow: None for "auto", every layer for "all"."""
    layers = request.gpu_layers
    return None if layers == AUTO else n_layer + 1 if layers == ALL else layers


def resolve_load(request: LoadRequest, hardware: Callable[[], object]) -> ResolvedLoad:
    """The plan for exactly this request (its context, its GPU layers), "auto" decided.
    hardware: returns the core.hardware.Hardware to plan with."""
    layers = request.gpu_layers
    try:
        from quantdesk.core.planner import load_profile, plan_for_model
        profile = load_profile(request.path)
        forced = forced_gpu_layers(request, profile.n_layer)
        machine = hardware()
        plan = plan_for_model(profile, n_ctx=request.n_ctx, hardware=machine,
                              n_gpu_layers=forced, lower_ctx=False,
                              type_k=request.kv_type_k, type_v=request.kv_type_v,
                              flash_attn=request.flash_attn,
                              prompt_lookup=request.prompt_lookup,
                              projector=request_projector(request))
        if request.rpc_servers:   # workers that answer take layers first
            from .workers import resolve_with_workers
            return resolve_with_workers(request, profile, machine, plan, forced)
    except Exception as exc:  # noqa: BLE001 - no plan: "auto" stays on the CPU, always safe
        why = _one_line(exc)
        if layers == AUTO:
            return ResolvedLoad(request, 0, None, f"auto: CPU only (no plan: {why})", why)
        return ResolvedLoad(request, llama_gpu_layers(layers), None, "", why)
    if layers == AUTO:
        return ResolvedLoad(request, max(0, int(plan.gpu_layers)), plan, f"auto: {plan.fit}")
    return ResolvedLoad(request, llama_gpu_layers(layers), plan)


def context_by_kv_type(request: LoadRequest, hardware: Callable[[], object],
                       types=None) -> list:
    """The largest context `request`'s model reaches on this machine per KV-cache type (f16,
    q8_0, q4_0 by default), with its flash-attention and GPU-layer choices: a list of
    core.planner.kv_fit.KvReach. Raises PlannerError when the model cannot be planned."""
    from quantdesk.core.planner import load_profile
    from quantdesk.core.planner.kv_fit import KV_TABLE_TYPES
    from quantdesk.core.planner.kv_fit import context_by_kv_type as reach
    profile = load_profile(request.path)
    return reach(profile, hardware(), types or KV_TABLE_TYPES,
                 flash_attn=request.flash_attn,
                 n_gpu_layers=forced_gpu_layers(request, profile.n_layer),
                 prompt_lookup=request.prompt_lookup, projector=request_projector(request))
