"""The fit planner: for a model and its quant types, how many layers go to the GPU, whether it
fits at all, and which type to pick.

Rules (tested as tables in tests/planner/test_recommend.py):
- n_gpu_layers: the largest count whose VRAM estimate fits the best GPU's free memory less a
  safety margin; n_layer + 1 means everything, output matrix included ("full-gpu").
- fit: "full-gpu" | "partial" (some layers offloaded) | "cpu" (no usable GPU or no layer fits) |
  "no-fit" (RAM, less its margin, cannot hold the rest).
- recommendation: the highest-quality type, no worse than Q4_K_M, that runs fully on the GPU
  (quantized types first: Q8_0 answers like F16 at half the memory); else the best type no larger
  than Q4_K_M that fits (split or CPU runs are memory-bandwidth bound, so bigger only means slower;
  Q4_K_M is llama.cpp's usual default, and a Q4_K_M mostly on the GPU beats a Q3 fully on it);
  if nothing fits at the asked context, a quantized KV cache is tried when the caller offers one
  (kv_fit.py; labelled, with its cost), then the context is halved (not below 512) until
  something does, and the note says so.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .memory import MiB, MemoryEstimate, estimate_memory
from .profile import ModelProfile, retype
from .quality import QUALITY_ORDER, UNQUANTIZED, quality_note, quality_rank

VRAM_MARGIN_MIN, VRAM_MARGIN_SHARE = 256 * MiB, 0.05
RAM_MARGIN = 512 * MiB
MIN_CTX = 512
CPU_SWEET_SPOT = "Q4_K_M"
DEFAULT_TYPES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q4_1", "Q4_0",
                 "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K")


@dataclass(frozen=True)
class Plan:
    type: str
    size_bytes: int
    gpu_layers: int
    n_layer: int
    fit: str                  # "full-gpu" | "partial" | "cpu" | "no-fit"
    ram_bytes: int
    vram_bytes: int
    n_ctx: int
    n_ctx_requested: int
    note: str
    estimated: bool = False   # True: priced from another type's header (a what-if), not the file
    memory: MemoryEstimate | None = None
    kv_type_k: str = "f16"    # the KV-cache types and flash attention this plan is for
    kv_type_v: str = "f16"
    flash_attn: bool = False

    @property
    def fits(self) -> bool:
        return self.fit != "no-fit"

    def to_json(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "memory"}
        d["memory"] = self.memory.to_json() if self.memory else None
        d["quality"] = quality_note(self.type)
        return d


def vram_budget(hardware) -> int:
    free = hardware.usable_vram
    return max(0, free - max(VRAM_MARGIN_MIN, int(free * VRAM_MARGIN_SHARE))) if free else 0


def ram_budget(hardware) -> int:
    return max(0, hardware.ram_available - RAM_MARGIN)


def _options(hardware) -> dict:
    simd = set(hardware.simd)
    gpu = hardware.best_gpu
    return {"cpu_repack": not simd or bool(simd & {"AVX2", "NEON"}),
            "gpu_backend": gpu.backend if gpu else "cpu"}


def max_gpu_layers(profile: ModelProfile, budget: int, n_ctx: int, **kw) -> int:
    """Largest n_gpu_layers whose VRAM estimate fits `budget` (VRAM grows with each layer)."""
    lo, hi = 0, profile.n_layer + 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_memory(profile, n_ctx=n_ctx, n_gpu_layers=mid, **kw).vram_bytes <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan_profile(profile: ModelProfile, hardware, *, n_ctx: int, lower_ctx: bool = False,
                 estimated: bool = False, n_gpu_layers: int | None = None, **kw) -> Plan:
    """Plan one concrete type. `lower_ctx`: halve the context until the model fits, and say so.
    `n_gpu_layers`: the user's own choice instead of the largest that fits."""
    requested = n_ctx
    opts = {**_options(hardware), **kw}
    opts["type_k"], opts["type_v"] = (opts.get("type_k", "f16").lower(),
                                      opts.get("type_v", "f16").lower())
    if isinstance(opts.get("flash_attn"), str):   # "auto": what llama.cpp will decide
        from quantdesk.core.engine.kv_cache import flash_attn_enabled
        backend = opts["gpu_backend"] if hardware.usable_vram else "cpu"
        opts["flash_attn"] = flash_attn_enabled(opts["flash_attn"], backend, opts["type_v"])
    unified = bool(hardware.best_gpu and hardware.best_gpu.unified)
    while True:
        budget = vram_budget(hardware)
        if n_gpu_layers is not None:
            gl = max(0, min(n_gpu_layers, profile.n_layer + 1)) if hardware.usable_vram else 0
        else:
            gl = max_gpu_layers(profile, budget, n_ctx, **opts) if budget else 0
        mem = estimate_memory(profile, n_ctx=n_ctx, n_gpu_layers=gl, **opts)
        need_ram = mem.ram_bytes + (mem.vram_bytes if unified else 0)
        if need_ram > ram_budget(hardware):
            fit = "no-fit"
        elif gl > profile.n_layer:
            fit = "full-gpu"
        else:
            fit = "partial" if gl else "cpu"
        if fit != "no-fit" or not lower_ctx or n_ctx <= MIN_CTX:
            break
        n_ctx = max(MIN_CTX, n_ctx // 2)
    note = _note(fit, gl, profile.n_layer, mem, hardware, n_ctx, requested)
    return Plan(type=profile.file_type, size_bytes=profile.size_bytes, gpu_layers=gl,
                n_layer=profile.n_layer, fit=fit, ram_bytes=mem.ram_bytes,
                vram_bytes=mem.vram_bytes, n_ctx=n_ctx, n_ctx_requested=requested, note=note,
                estimated=estimated, memory=mem, kv_type_k=opts["type_k"],
                kv_type_v=opts["type_v"], flash_attn=bool(opts.get("flash_attn", False)))


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / MiB:.0f} MiB"


def _note(fit, gl, n_layer, mem, hardware, n_ctx, requested) -> str:
    if fit == "no-fit":
        return (f"needs {_gib(mem.ram_bytes)} of RAM at context {n_ctx}; "
                f"{_gib(hardware.ram_available)} is free")
    if fit == "full-gpu":
        text = f"all {n_layer} layers on the GPU ({_gib(mem.vram_bytes)} of VRAM)"
    elif fit == "partial":
        text = (f"{gl} of {n_layer} layers on the GPU ({_gib(mem.vram_bytes)} VRAM), "
                f"the rest on the CPU ({_gib(mem.ram_bytes)} RAM)")
    elif hardware.gpus and not hardware.gpu_offload_supported:
        text = f"CPU only: this llama.cpp build cannot offload to the GPU ({_gib(mem.ram_bytes)} RAM)"
    elif hardware.usable_vram:
        text = f"CPU only: not even one layer fits in free VRAM ({_gib(mem.ram_bytes)} RAM)"
    else:
        text = f"CPU only ({_gib(mem.ram_bytes)} RAM)"
    if n_ctx < requested:
        text += f"; context lowered from {requested} to {n_ctx} so it fits"
    return text


def plan_options(profile: ModelProfile, hardware, *, n_ctx: int, types=None,
                 lower_ctx: bool = False, **kw) -> list[Plan]:
    """Plans for several quant types of one model (the file's own type priced from its real
    tensors, the others estimated with llama.cpp's quantization mix), best quality first."""
    names = list(dict.fromkeys(t.upper() for t in (types or DEFAULT_TYPES)))
    if profile.file_type not in names and types is None:
        names.append(profile.file_type)
    plans = []
    for name in names:
        try:
            p = retype(profile, name)
        except ValueError:
            continue
        plans.append(plan_profile(p, hardware, n_ctx=n_ctx, lower_ctx=lower_ctx,
                                  estimated=name != profile.file_type, **kw))
    plans.sort(key=lambda p: quality_rank(p.type))
    return plans


def recommend(plans: list[Plan], profile: ModelProfile | None = None, hardware=None, *,
              kv_types: tuple[str, ...] = (), **kw) -> Plan | None:
    """The type to use, by the rules in this module's docstring. Pass profile and hardware to
    allow lowering the context when nothing fits at the asked one; `kv_types` (e.g. ("q8_0",
    "q4_0")) are quantized KV caches tried first, in order, to keep the asked context (the plan's
    note says so, with what it saves and costs: kv_fit.propose_kv_cache)."""
    choice = _pick(plans)
    if choice is None and profile is not None and hardware is not None and plans and kv_types:
        from .kv_fit import propose_kv_cache
        choice = propose_kv_cache(plans, profile, hardware, kv_types, **kw)
    if choice is None and profile is not None and hardware is not None and plans:
        lowered = [plan_profile(retype(profile, p.type), hardware, n_ctx=p.n_ctx_requested,
                                lower_ctx=True, estimated=p.estimated, **kw) for p in plans]
        choice = _pick(lowered)
    return choice


def _needs_imatrix(qtype: str) -> bool:
    from quantdesk.core.quantize.file_types import FILE_TYPES
    ft = FILE_TYPES.get(qtype.upper())
    return bool(ft and ft.needs_imatrix)


def _pick(plans: list[Plan]) -> Plan | None:
    # a type that needs a calibration first (an importance matrix) is offered, never recommended
    ranked = sorted((p for p in plans if p.fits and not _needs_imatrix(p.type)),
                    key=lambda p: quality_rank(p.type))
    if not ranked:
        return None
    sweet = quality_rank(CPU_SWEET_SPOT)
    # 1. Fully on the GPU, and no worse than Q4_K_M: the best such type (quantized first).
    full = [p for p in ranked if p.fit == "full-gpu" and quality_rank(p.type) <= sweet]
    if full:
        return ([p for p in full if p.type not in UNQUANTIZED] or full)[0]
    # 2. Split or CPU: the best type no larger than Q4_K_M (bandwidth-bound: bigger is slower),
    #    which may also be a lower type that fits fully on the GPU.
    modest = [p for p in ranked if quality_rank(p.type) >= sweet]
    if modest:
        return modest[0]
    return ranked[-1]  # only larger types were offered: the smallest that fits


__all__ = ["Plan", "plan_profile", "plan_options", "recommend", "max_gpu_layers", "QUALITY_ORDER"]
