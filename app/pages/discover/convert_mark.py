"""The "can we convert it?" mark of a safetensors repo on the Discover page: config.json read once
(through the hub client, in the worker), judged by the converter's registry, and the planner's
recommendation from the same config. The page shows the line and enables "Quantize locally…"
only for a repo the converter takes."""
from __future__ import annotations

import html


def safetensors_outlook(details, n_ctx: int):
    """(Convertible, (plans, best, note)) — runs in the worker thread (network)."""
    from quantdesk.core.hub.convertible import judge_config, repo_config
    from quantdesk.core.hub.fit import recommend_for_safetensors
    config = repo_config(details)
    verdict = judge_config(config)
    if config is None:
        return verdict, ([], None, "no config.json in the repo")
    return verdict, recommend_for_safetensors(details, n_ctx=n_ctx, config=config)


def outlook_text(verdict, recommendation, size) -> str:
    """The line under the repo title: the convertible mark, then the recommended type."""
    if not verdict.ok:
        return ("<span style='color:#b00020'>✗ Cannot convert this repo: "
                f"{html.escape(verdict.reason or 'unknown reason')}</span>")
    _rows, best, note = recommendation
    mark = f"✓ Convertible here ({html.escape(verdict.architecture or '?')})"
    if getattr(verdict, "vision_projector", False):
        mark += ", vision projector (mmproj) too"
    if best:
        return (f"{mark} · Recommended here: <b>{html.escape(best['type'])}</b> "
                f"({size(best['size_bytes'])}, {html.escape(str(best['fit']))})")
    return f"{mark} · {html.escape(note or 'No quant type fits this machine.')}"
