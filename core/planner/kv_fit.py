"""What a quantized KV cache buys: the context each KV type reaches on this machine, and a
quantized KV cache as the way to keep the asked context when f16 does not fit.

    context_by_kv_type(profile, hardware)              -> [KvReach f16, q8_0, q4_0]
    propose_kv_cache(plans, profile, hardware, ("q8_0", "q4_0"), n_ctx=..) -> labelled Plan | None

A quantized V cache needs flash attention (core.engine.kv_cache.check_kv_options): a proposal
that quantizes V is planned, and labelled, with flash attention on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from quantdesk.core.engine.kv_cache import KV_QUALITY_NOTE, is_quantized, parse_flash_attn

from .memory import MiB, kv_layer_bytes
from .plan import MIN_CTX, Plan, _pick, plan_profile
from .profile import ModelProfile, retype

KV_TABLE_TYPES = ("f16", "q8_0", "q4_0")
CTX_STEP = 256          # contexts are searched in llama.cpp's KV padding unit
CTX_CEILING = 1 << 20   # a model that states no training context: search up to 1M tokens


def kv_bytes_per_token(profile: ModelProfile, kv_type: str) -> int:
    """K and V bytes one token takes over all layers (full-size caches)."""
    return sum(kv_layer_bytes(profile, 1, type_k=kv_type, type_v=kv_type))


def _flash_for(kv_type: str, flash_attn) -> str:
    """The flash-attention setting a plan for `kv_type` uses: the caller's, turned on where a
    quantized V cache needs it."""
    mode = parse_flash_attn(flash_attn)
    return "on" if mode == "off" and is_quantized(kv_type) else mode


@dataclass(frozen=True)
class KvReach:
    kv_type: str
    n_ctx: int             # the largest context that fits (0: not even MIN_CTX)
    n_ctx_limit: int       # the search's ceiling: the model's training context
    bytes_per_token: int   # KV cache per token, all layers
    plan: Plan | None      # the plan at n_ctx
    quality: str           # one line: what this KV type costs in quality

    def to_json(self) -> dict:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "plan"}
        d["fit"] = self.plan.fit if self.plan else "no-fit"
        d["gpu_layers"] = self.plan.gpu_layers if self.plan else 0
        return d


def reachable_context(profile: ModelProfile, hardware, *, kv_type: str = "f16",
                      flash_attn="auto", limit: int | None = None, **kw) -> Plan | None:
    """The plan at the largest context (a multiple of CTX_STEP, up to the model's training
    context) that fits this machine with `kv_type` for K and V; None if not even MIN_CTX fits."""
    limit = limit or profile.n_ctx_train or CTX_CEILING
    opts = dict(type_k=kv_type, type_v=kv_type, flash_attn=_flash_for(kv_type, flash_attn), **kw)

    def plan(n: int) -> Plan:
        return plan_profile(profile, hardware, n_ctx=n, lower_ctx=False, **opts)

    best = plan(min(MIN_CTX, limit))
    if not best.fits:
        return None
    top = plan(limit)
    if top.fits:
        return top
    lo, hi = max(1, min(MIN_CTX, limit) // CTX_STEP), limit // CTX_STEP   # in steps; lo fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        p = plan(mid * CTX_STEP)
        if p.fits:
            lo, best = mid, p
        else:
            hi = mid - 1
    return best


def context_by_kv_type(profile: ModelProfile, hardware, types=KV_TABLE_TYPES,
                       flash_attn="auto", **kw) -> list[KvReach]:
    """Per KV type: the largest context this model reaches on this machine (the plan panel's
    rows and `quantdesk plan --kv-type`)."""
    limit = profile.n_ctx_train or CTX_CEILING
    out = []
    for kv in types:
        p = reachable_context(profile, hardware, kv_type=kv, flash_attn=flash_attn, limit=limit,
                              **kw)
        out.append(KvReach(kv, p.n_ctx if p else 0, limit, kv_bytes_per_token(profile, kv), p,
                           KV_QUALITY_NOTE.get(kv, "")))
    return out


def _mib(n: int) -> str:
    return f"{n / MiB:,.0f} MiB"


def propose_kv_cache(plans: list[Plan], profile: ModelProfile, hardware,
                     kv_types: tuple[str, ...], *, flash_attn="auto", **kw) -> Plan | None:
    """The recommendation with the first of `kv_types` that makes some type fit at the asked
    context (plans were made with an f16 cache, or the caller's), labelled in its note."""
    kw = {k: v for k, v in kw.items() if k not in ("type_k", "type_v")}
    for kv in kv_types:
        fa = _flash_for(kv, flash_attn)
        tried = [plan_profile(retype(profile, p.type), hardware, n_ctx=p.n_ctx_requested,
                              lower_ctx=False, estimated=p.estimated, type_k=kv, type_v=kv,
                              flash_attn=fa, **kw) for p in plans]
        choice = _pick(tried)
        if choice is None:
            continue
        before = next(p for p in plans if p.type == choice.type)
        saved = (before.memory.kv_ram + before.memory.kv_vram) - \
            (choice.memory.kv_ram + choice.memory.kv_vram)
        label = (f"quantized KV cache {kv} (flash attention {fa}) to reach context "
                 f"{choice.n_ctx}: {_mib(saved)} less KV memory; quality: "
                 f"{KV_QUALITY_NOTE.get(kv, 'lower')}")
        return dataclasses.replace(choice, note=f"{choice.note}; {label}")
    return None
