"""Whether a safetensors repo on the hub is one we can convert, judged before anything is fetched
but its config.json: the architecture must be one the converter knows and the quantization (if
any) one it can dequantize. The converter's own lookup decides (quantdesk.core.convert
.conversion_refusal), so every family added to its registry shows up here by itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from quantdesk.core.hub.variants import RepoDetails


@dataclass(frozen=True)
class Convertible:
    ok: bool
    reason: str | None               # one line when not ok
    architecture: str | None = None  # the first `architectures` entry of config.json
    vision_projector: bool = False   # its vision tower can be written as an mmproj too


def repo_config(details: RepoDetails, revision: str | None = None) -> dict | None:
    """config.json of the repo through huggingface_hub (into the HF cache), or None when the repo
    has none. Hub failures raise HubError (one line); a config that is not a JSON object gives {}."""
    if not any(f.name == "config.json" for f in details.files):
        return None
    from huggingface_hub import hf_hub_download
    from quantdesk.core.hub.connection import cache_dir, check_online, endpoint, get_token
    from quantdesk.core.hub.errors import translate
    check_online(f"read {details.repo_id}/config.json")
    try:
        path = hf_hub_download(details.repo_id, "config.json", revision=revision or details.sha,
                               cache_dir=cache_dir(), endpoint=endpoint(), token=get_token() or False)
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, f"read {details.repo_id}/config.json") from None
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError, RecursionError):
        return {}
    return config if isinstance(config, dict) else {}


def judge_config(config: dict | None) -> Convertible:
    from quantdesk.core.convert import conversion_refusal
    from quantdesk.core.text import shown
    if config is None:
        return Convertible(False, "no config.json in the repo")
    if not config:
        return Convertible(False, "config.json is not a JSON object")
    archs = config.get("architectures")
    arch = shown(str(archs[0])) if isinstance(archs, list) and archs else None
    reason = conversion_refusal(config)
    return Convertible(reason is None, reason, arch, _vision_convertible(config))


def _vision_convertible(config: dict) -> bool:
    """A vision_config our mmproj converter takes (judged from config.json alone: the repo's
    preprocessor_config.json is read only when converting)."""
    from quantdesk.core.convert.mmproj import vision_refusal
    return isinstance(config.get("vision_config"), dict) and vision_refusal(config) is None


def convertible(details: RepoDetails, revision: str | None = None) -> Convertible:
    return judge_config(repo_config(details, revision))
