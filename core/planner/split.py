"""Plan a model over several machines: workers (llama.cpp RPC, core/rpc), the local GPU, the CPU.

llama.cpp's rules, which the plan follows (llama-model.cpp load_tensors): the last n_gpu_layers
layers (the output matrix counts as layer n_layer) leave the CPU; devices are ordered RPC workers
first (in the order given), then local GPUs; tensor_split's proportions cut that range into one
contiguous run per device, in device order. The plan passes layer *counts* as tensor_split, so
the cut is exact.

What a device must hold: its layers' weights and KV cache, plus a compute buffer (llama.cpp's
worst-case reservation: with the output matrix when the device holds it) and, for a local GPU,
the backend's context. A worker offers what it advertises as free (`quantdesk worker --mem`) less
WORKER_MARGIN; the local GPU its vram_budget. Layers are spread in proportion to what each device
offers (the same rule llama.cpp's own default split uses, by free memory); when rounding makes
one overflow, devices are filled in order instead; failing that, fewer layers leave the CPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .memory import GPU_CONTEXT, MiB, compute_reserved, estimate_memory, kv_layer_bytes
from .profile import ModelProfile

WORKER_MARGIN = 0.05      # share of a worker's advertised free memory kept back


@dataclass(frozen=True)
class DevicePart:
    name: str             # the worker's "host:port" (with "#i" for its i-th device), "GPU", "CPU"
    kind: str             # "worker" | "gpu" | "cpu"
    layers: int           # of n_layer + 1 (the output matrix counts as one)
    bytes: int            # planned: weights + KV + compute (+ context); CPU: the process's RAM
    budget: int           # what it offers, margin taken off

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SplitPlan:
    parts: tuple          # DevicePart per worker device, the local GPU if any, then the CPU
    n_gpu_layers: int     # layers that leave the CPU (llama.cpp's n_gpu_layers)
    tensor_split: tuple   # layers per device in llama.cpp's device order (workers, GPU)
    fits: bool            # the CPU's part fits this machine's RAM budget
    note: str

    @property
    def worker_layers(self) -> int:
        return sum(p.layers for p in self.parts if p.kind == "worker")

    def to_json(self) -> dict:
        return {"parts": [p.to_json() for p in self.parts], "n_gpu_layers": self.n_gpu_layers,
                "tensor_split": list(self.tensor_split), "fits": self.fits, "note": self.note}


def _chunks(sizes: list[int], caps: list[int], weights: list[int] | None) -> list[int] | None:
    """Layer counts per device, in order, covering `sizes` (bytes per offloaded layer, lowest
    first), each device's run within its cap; `weights`: spread in proportion to these (None:
    fill each device in turn). None when impossible this way."""
    n, counts, i = len(caps), [], 0
    total = sum(sizes)
    if total > sum(max(0, c) for c in caps):
        return None
    share = sum(weights) if weights else 0
    reached = 0.0
    for d, cap in enumerate(caps):
        used, take = 0, 0
        if weights:
            reached += total * weights[d] / share if share else 0
        while i + take < len(sizes):
            b = sizes[i + take]
            if used + b > cap:
                break
            # proportional: take a layer while its middle stays within this device's share
            if weights and d < n - 1 and sum(sizes[:i + take]) + b / 2 > reached:
                break
            used += b
            take += 1
        counts.append(take)
        i += take
    return counts if i == len(sizes) else None


def plan_split(profile: ModelProfile, hardware, workers, *, n_ctx: int, type_k: str = "f16",
               type_v: str = "f16", flash_attn: bool = False, n_gpu_layers: int | None = None,
               prompt_lookup: int = 0, gpu_budget: int = 0, ram_budget: int | None = None
               ) -> SplitPlan:
    """workers: core.rpc.wire.WorkerInfo (or anything with .endpoint and .devices as (free,
    total) pairs), in the order the load registers them. n_gpu_layers: the user's own count
    (None: as many as fit). gpu_budget: the local GPU's (0: none)."""
    n_layer = profile.n_layer
    layers, _embd, out, _other = profile.group_bytes()
    kv = kv_layer_bytes(profile, n_ctx, type_k=type_k, type_v=type_v)
    per_layer = [layers[i] + kv[i] for i in range(n_layer)] + [out]
    names, kinds, budgets = [], [], []
    for w in workers:
        many = len(w.devices) > 1
        for i, (free, _total) in enumerate(w.devices):
            names.append(f"{w.endpoint}#{i}" if many else w.endpoint)
            kinds.append("worker")
            budgets.append(max(0, int(free * (1 - WORKER_MARGIN))))
    if gpu_budget > 0:
        names.append("GPU")
        kinds.append("gpu")
        budgets.append(int(gpu_budget))
    backend = hardware.best_gpu.backend if hardware.best_gpu else "cpu"

    def fixed(kind: str, with_output: bool) -> int:
        extra = GPU_CONTEXT.get(backend, 0) if kind == "gpu" else 0
        return extra + compute_reserved(profile, n_ctx, flash_attn=flash_attn,
                                        with_output=with_output)

    def attempt(k: int) -> list[int] | None:
        if k == 0:
            return [0] * len(budgets)
        sizes = per_layer[n_layer + 1 - k:]
        # the last device holds the output matrix (and its larger compute buffer)
        caps = [b - fixed(kinds[d], d == len(budgets) - 1) for d, b in enumerate(budgets)]
        for weights in (budgets, None):
            counts = _chunks(sizes, caps, weights)
            if counts is not None and _fits(counts, sizes, budgets, kinds, fixed):
                return counts
        return None

    top = n_layer + 1 if n_gpu_layers is None else max(0, min(n_gpu_layers, n_layer + 1))
    k, counts = top, attempt(top)
    while counts is None and n_gpu_layers is None and k > 0:
        k -= 1
        counts = attempt(k)
    if counts is None:   # the user's count does not fit: keep it, say so
        counts = (_chunks(per_layer[n_layer + 1 - k:], [1 << 62] * len(budgets), budgets)
                  or [0] * len(budgets))
    return _assemble(profile, hardware, names, kinds, budgets, counts, per_layer, k, fixed,
                     n_ctx=n_ctx, type_k=type_k, type_v=type_v, flash_attn=flash_attn,
                     prompt_lookup=prompt_lookup, ram_budget=ram_budget)


def _fits(counts, sizes, budgets, kinds, fixed) -> bool:
    i, last = 0, max((d for d, c in enumerate(counts) if c), default=-1)
    for d, c in enumerate(counts):
        used = sum(sizes[i:i + c]) + (fixed(kinds[d], d == last) if c else 0)
        if used > budgets[d]:
            return False
        i += c
    return True


def _assemble(profile, hardware, names, kinds, budgets, counts, per_layer, k, fixed, *, n_ctx,
              type_k, type_v, flash_attn, prompt_lookup, ram_budget) -> SplitPlan:
    from .plan import ram_budget as local_ram_budget
    n_layer = profile.n_layer
    sizes = per_layer[n_layer + 1 - k:] if k else []
    parts, i = [], 0
    last = max((d for d, c in enumerate(counts) if c), default=-1)
    for d, c in enumerate(counts):
        used = sum(sizes[i:i + c]) + (fixed(kinds[d], d == last) if c else 0)
        parts.append(DevicePart(names[d], kinds[d], c, int(used), budgets[d]))
        i += c
    mem = estimate_memory(profile, n_ctx=n_ctx, n_gpu_layers=k, type_k=type_k, type_v=type_v,
                          flash_attn=flash_attn, prompt_lookup=prompt_lookup)
    ram_ok = local_ram_budget(hardware) if ram_budget is None else ram_budget
    parts.append(DevicePart("CPU", "cpu", n_layer + 1 - k, mem.ram_bytes, ram_ok))
    fits = mem.ram_bytes <= ram_ok and all(p.bytes <= p.budget for p in parts[:-1])
    return SplitPlan(tuple(parts), k, tuple(counts), fits, _note(parts, n_layer, fits))


def _size(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / MiB:.0f} MiB"


def _note(parts, n_layer: int, fits: bool) -> str:
    shown = []
    for p in parts:
        if p.kind == "cpu":
            shown.append(f"this CPU {p.layers} ({_size(p.bytes)} RAM)")
        elif p.layers or p.kind == "worker":
            shown.append(f"{p.name} {p.layers} ({_size(p.bytes)} of {_size(p.budget)})")
    text = f"{n_layer + 1} layers: " + ", ".join(shown)
    return text if fits else text + "; does not fit"
