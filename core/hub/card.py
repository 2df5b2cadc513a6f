"""A repo's model card (README.md) as Markdown text, fetched into the huggingface_hub cache."""
from __future__ import annotations

import re

from quantdesk.core.hub.connection import cache_dir, check_online, endpoint, get_token
from quantdesk.core.hub.errors import NotFoundError, translate

_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.DOTALL)


def model_card(repo_id: str, revision: str | None = None) -> str:
    """The card's Markdown without its YAML front matter ("" when the repo has no README)."""
    check_online(f"read the model card of {repo_id}")
    from huggingface_hub import hf_hub_download
    try:
        path = hf_hub_download(repo_id, "README.md", revision=revision, cache_dir=cache_dir(),
                               endpoint=endpoint(), token=get_token() or False)
    except Exception as exc:  # noqa: BLE001
        err = translate(exc, f"read the model card of {repo_id}")
        if isinstance(err, NotFoundError):
            return ""
        raise err from None
    with open(path, encoding="utf-8", errors="replace") as f:
        return _FRONT_MATTER.sub("", f.read(), count=1)
