"""The fit planner: which quant of a model fits this machine, with how many GPU layers.

    plan_for_model(path_or_info, n_ctx=4096)             -> Plan for the file as it is (chat load:
                                                            plan.gpu_layers is "auto")
    options_for(path | ModelInfo | hf_config_dict, n_ctx=4096, types=None, parameters=None)
                                                         -> ([Plan per quant type], recommended)
                                                            (the hub's fit badges; a quantize
                                                            source: core.runtime.quantize)
    plan_header(metadata, tensors, n_ctx=4096)           -> Plan for a remote GGUF's header prefix
                                                            (quantdesk.core.gguf.parse_header)
    estimate_memory(profile, n_ctx=..., n_gpu_layers=..) -> MemoryEstimate (RAM/VRAM breakdown)

Plan.fit is "full-gpu" | "partial" | "cpu" | "no-fit"; Plan.note is one line for the user.
Fast and light: no llama_cpp import, headers parsed once per (path, size, mtime) — after that a
plan takes well under a millisecond; a first parse walks the vocabulary (tens of ms for 262k).
"""
from __future__ import annotations

import os
from pathlib import Path

from quantdesk.core.gguf import GGUFError, read_header, split_parts
from quantdesk.core.text import quoted, shown

from .errors import PlannerError
from .hf_config import estimate_for_type, profile_from_hf_config
from .memory import MemoryEstimate, compute_reserved, estimate_memory, kv_layer_bytes
from .plan import (DEFAULT_TYPES, Plan, max_gpu_layers, plan_options, plan_profile, recommend,
                   ram_budget, vram_budget)
from .profile import ModelProfile, profile_from_header, retype
from .quality import KLD_LLAMA3_8B, KLD_SOURCE, quality_note, quality_rank

__all__ = ["PlannerError", "plan_for_model", "load_profile", "plan_options", "plan_profile",
           "recommend", "Plan", "ModelProfile", "MemoryEstimate", "estimate_memory",
           "profile_from_header", "profile_from_hf_config", "estimate_for_type", "retype",
           "quality_note",
           "options_for", "plan_header", "DEFAULT_TYPES"]

_profiles: dict[tuple, ModelProfile] = {}


def load_profile(source) -> ModelProfile:
    """A ModelProfile from a path, a core.gguf.ModelInfo (anything with .path/.files) or a
    profile. Cached by (path, size, mtime) of every part."""
    if isinstance(source, ModelProfile):
        return source
    files = getattr(source, "files", None) or None
    path = Path(getattr(source, "path", source))
    parts = [Path(p) for p in files] if files else (split_parts(path) or [path])
    try:
        key = tuple((str(p), st.st_size, st.st_mtime_ns) for p in parts for st in [os.stat(p)])
    except FileNotFoundError as exc:
        raise PlannerError(f"{shown(Path(exc.filename or path).name)}: no such file") from None
    except OSError as exc:
        raise PlannerError(f"{shown(path.name)}: cannot read ({exc.strerror})") from None
    cached = _profiles.get(key)
    if cached is not None:
        return cached
    try:
        headers = [read_header(p) for p in parts]
    except GGUFError as exc:
        raise PlannerError(str(exc)) from None
    except OSError as exc:
        raise PlannerError(f"{shown(path.name)}: cannot read ({exc.strerror})") from None
    tensors = [t for h in headers for t in h.tensors]
    name = headers[0].metadata.get("general.name") or path.stem
    profile = profile_from_header(headers[0].metadata, tensors, name=str(name), file_name=path.name)
    if profile.n_layer <= 0 or profile.n_embd <= 0:
        raise PlannerError(f"{shown(path.name)}: not a language model we can plan "
                           f"(architecture {quoted(profile.architecture)} has no block count)")
    _profiles[key] = profile
    return profile


def plan_for_model(info_or_path, *, n_ctx: int, hardware=None, vram: int | None = None,
                   ram: int | None = None, n_gpu_layers: int | None = None,
                   lower_ctx: bool = True, **kw) -> Plan:
    """Plan the model file as it is. vram/ram override what was detected (bytes);
    n_gpu_layers forces a layer count; lower_ctx halves n_ctx when that is what makes it fit."""
    if hardware is None:
        from quantdesk.core.hardware import detect
        hardware = detect()
    if vram is not None or ram is not None:
        hardware = hardware.with_overrides(vram=vram, ram=ram)
    profile = load_profile(info_or_path)
    return plan_profile(profile, hardware, n_ctx=n_ctx, lower_ctx=lower_ctx,
                        n_gpu_layers=n_gpu_layers, **kw)


def options_for(source, *, n_ctx: int, hardware=None, types=None, **kw) -> tuple[list[Plan], Plan | None]:
    """(plans per quant type, recommended plan) for a path, ModelInfo, profile, or HF config dict
    (with kw `parameters=`). The Quantize page's type table and the hub's variant list use this."""
    if hardware is None:
        from quantdesk.core.hardware import detect
        hardware = detect()
    if isinstance(source, dict):
        profile = profile_from_hf_config(source, parameters=kw.pop("parameters", None))
    else:
        profile = load_profile(source)
    plans = plan_options(profile, hardware, n_ctx=n_ctx, types=types, **kw)
    return plans, recommend(plans, profile, hardware, **kw)


def plan_header(metadata: dict, tensors, *, n_ctx: int, hardware=None, **kw) -> Plan:
    """Plan a remote GGUF from its parsed header (core.gguf.parse_header / read_prefix on its
    first megabytes). The hub's variant list uses this per file."""
    if hardware is None:
        from quantdesk.core.hardware import detect
        hardware = detect()
    return plan_profile(profile_from_header(metadata, tensors), hardware, n_ctx=n_ctx, **kw)
