"""A repo's model card (README.md): its Markdown text and the facts of its YAML front matter
(`license:`), fetched into the huggingface_hub cache."""
from __future__ import annotations

import re

from quantdesk.core.hub.connection import cache_dir, check_online, endpoint, get_token
from quantdesk.core.hub.errors import NotFoundError, translate

_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.DOTALL)
_LICENSE = re.compile(r"^license:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_LICENSE_NAME = re.compile(r"^license_name:[ \t]*(.*?)[ \t]*$", re.MULTILINE)


def card_license(text: str) -> str | None:
    """The `license:` of a card's front matter ("other" named by `license_name:`), or None.
    Read with a line match, not a YAML parser: the value is one scalar, and a hostile card's
    YAML is never evaluated."""
    head = _FRONT_MATTER.match(text)
    if not head:
        return None
    found = _LICENSE.search(head.group(0))
    value = found.group(1).strip().strip("\"'") if found else ""
    if value.startswith("[") or not value:   # a list ("- mit" lines or [a, b]): its first item
        block = re.search(r"^license:\s*\n((?:[ \t]*-[ \t]*.+\n)+)", head.group(0), re.MULTILINE)
        if block:
            value = block.group(1).split("\n")[0].strip().lstrip("-").strip().strip("\"'")
        else:
            value = value.strip("[]").split(",")[0].strip().strip("\"'")
    if value == "other":
        named = _LICENSE_NAME.search(head.group(0))
        if named and named.group(1).strip():
            value = named.group(1).strip().strip("\"'")
    return value[:80] or None


def read_card(repo_id: str, revision: str | None = None) -> tuple[str, str | None]:
    """(the card's Markdown without its front matter, its licence or None)."""
    raw = _raw_card(repo_id, revision)
    return _FRONT_MATTER.sub("", raw, count=1), card_license(raw)


def model_card(repo_id: str, revision: str | None = None) -> str:
    """The card's Markdown without its YAML front matter ("" when the repo has no README)."""
    return read_card(repo_id, revision)[0]


def _raw_card(repo_id: str, revision: str | None) -> str:
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
        return f.read(1 << 20)   # a card is text; a huge one is cut, not read whole
