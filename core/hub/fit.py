"""Fit badges: the planner's verdict for a remote GGUF variant (from its header read over HTTP)
and its recommended quant for a safetensors repo (from config.json; each type priced with the
quantizer's own tensor_types through planner.retype). The planner is imported where it is used,
so importing core.hub stays cheap.
"""
from __future__ import annotations

from quantdesk.core.hub.variants import RepoDetails, Variant


def fit_variant(variant: Variant, *, n_ctx: int = 4096, hardware=None, vram=None, ram=None) -> Variant:
    """Set `variant.fit` (Plan.to_json()) from its remote header, or `fit_note` when impossible."""
    if variant.remote is None:
        variant.fit, variant.fit_note = None, "header not read"
        return variant
    from quantdesk.core import planner
    remote = variant.remote
    try:
        profile = planner.profile_from_header(
            remote.metadata, remote.tensors,
            name=str(remote.metadata.get("general.name") or variant.quant))
        plan = planner.plan_for_model(profile, n_ctx=n_ctx, hardware=hardware, vram=vram, ram=ram)
    except Exception as exc:  # noqa: BLE001 - a badge must never break the page
        variant.fit, variant.fit_note = None, f"cannot plan: {exc}".splitlines()[0]
        return variant
    variant.fit = plan.to_json()
    variant.fit_note = None
    return variant


def recommend_for_safetensors(details: RepoDetails, *, n_ctx: int = 4096, hardware=None,
                              revision: str | None = None, config: dict | None = None):
    """(plans per quant type as dicts, recommended type or None, note) for a safetensors repo, from
    its config.json (a small download into the HF cache, or `config` when already read) and the
    hub's parameter count."""
    from quantdesk.core import planner
    if config is None:
        from quantdesk.core.hub.convertible import repo_config
        config = repo_config(details, revision)
        if config is None:
            return [], None, "no config.json in the repo"
    try:
        plans, best = planner.options_for(config, n_ctx=n_ctx, hardware=hardware,
                                          parameters=_weights_counted(details, config))
    except Exception as exc:  # noqa: BLE001
        return [], None, f"cannot plan: {exc}".splitlines()[0]
    rows = [p.to_json() for p in plans]
    return rows, (best.to_json() if best is not None else None), None


def _weights_counted(details: RepoDetails, config: dict) -> int | None:
    """The hub's parameter count where it counts weights. For GPTQ/AWQ it counts the packed int32
    words (8 weights each), so the planner estimates from config.json's shapes instead."""
    from quantdesk.core.convert import ConvertError
    from quantdesk.core.convert.dequant import quant_method
    try:
        packed = quant_method(config) in ("gptq", "awq")
    except ConvertError:
        packed = False
    return None if packed else details.parameters
