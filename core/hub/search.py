"""Model search on the hub through `HfApi.list_models`, paged lazily.

`list_models` is a generator that follows the hub's `Link: rel="next"` pages only when iterated
past the current page, so `SearchPager.next_page(n)` asks the network for more exactly when the
user scrolls to the end of what is shown.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from quantdesk.core.hub.connection import api, auth_headers, check_online, endpoint, session
from quantdesk.core.hub.errors import translate

# What the GUI offers -> the hub's `sort` key (list_models maps the snake-case names).
SORTS = {
    "trending": "trending_score",
    "downloads": "downloads",
    "likes": "likes",
    "updated": "last_modified",
}
# The same keys as sent on the wire (what list_models maps them to).
_SORT_PARAMS = {"trending": "trendingScore", "downloads": "downloads", "likes": "likes", "updated": "lastModified"}
# Filters: GGUF repos, or text-generation repos with safetensors weights (convertible locally).
FILTERS = {
    "gguf": {"filter": "gguf"},
    "safetensors": {"filter": "safetensors", "pipeline_tag": "text-generation"},
    "all": {},
}
REQUEST_TIMEOUT = 30.0   # seconds; huggingface_hub's shared client has no default timeout
_EXPAND = ["author", "downloads", "likes", "lastModified", "gated", "tags", "pipeline_tag",
           "library_name", "gguf", "safetensors", "trendingScore", "config"]


@dataclass
class SearchResult:
    repo_id: str
    author: str
    name: str
    downloads: int | None
    likes: int | None
    updated: str | None            # ISO 8601
    parameters: int | None         # from the hub's GGUF or safetensors metadata, where known
    gated: bool
    kind: str                      # "gguf" | "safetensors" | "other"
    pipeline_tag: str | None
    tags: list[str] = field(default_factory=list)
    # safetensors repos: can the converter take it (from the hub's summary of config.json)?
    # None when not judged (a GGUF repo, or the hub lists no config)
    convertible: bool | None = None
    convert_note: str | None = None      # why not, in one line

    def to_json(self) -> dict:
        return asdict(self)


def _result(info) -> SearchResult:
    tags = list(info.tags or [])
    gguf = info.gguf or {}
    params = gguf.get("total") if isinstance(gguf, dict) else None
    if params is None and info.safetensors is not None:
        params = info.safetensors.total
    kind = "gguf" if ("gguf" in tags or gguf) else "safetensors" if ("safetensors" in tags or info.safetensors) else "other"
    author, _, name = info.id.rpartition("/")
    convertible, note = None, None
    config = getattr(info, "config", None)
    if kind == "safetensors" and isinstance(config, dict) and config:
        from quantdesk.core.convert import architecture_refusal
        note = architecture_refusal(config)
        convertible = note is None
    return SearchResult(
        repo_id=info.id, author=info.author or author, name=name,
        downloads=info.downloads, likes=info.likes,
        updated=info.last_modified.isoformat() if info.last_modified else None,
        parameters=params, gated=bool(info.gated), kind=kind,
        pipeline_tag=info.pipeline_tag, tags=tags, convertible=convertible, convert_note=note,
    )


class SearchPager:
    """One search, fetched a page at a time: `next_page()` makes one request of `page_size` items.

    `HfApi.list_models(limit=N)` sends N as the page size and stops after N items, so it cannot
    fetch "the next 30" on demand (huggingface_hub issue #4257). We make the same request it makes
    (same session, same error handling, same ModelInfo parsing) and follow the hub's
    `Link: rel="next"` cursor ourselves, one page per call.
    """

    def __init__(self, query: str = "", *, filter: str = "gguf", sort: str = "trending", page_size: int = 30):
        check_online("search the hub")
        if filter not in FILTERS:
            raise ValueError(f"unknown filter {filter!r}; choose one of {', '.join(FILTERS)}")
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; choose one of {', '.join(SORTS)}")
        self.query, self.filter, self.sort, self.page_size = query, filter, sort, page_size
        params: dict = {"limit": page_size, "sort": _SORT_PARAMS[sort], "expand": _EXPAND, **FILTERS[filter]}
        if query:
            params["search"] = query
        self._next: tuple[str, dict | None] | None = (f"{endpoint()}/api/models", params)
        self.pages_fetched = 0

    @property
    def exhausted(self) -> bool:
        return self._next is None

    def next_page(self) -> list[SearchResult]:
        """The next page of results; [] once the hub has no more."""
        if self._next is None:
            return []
        check_online("search the hub")
        from huggingface_hub import ModelInfo
        from huggingface_hub.utils import hf_raise_for_status
        url, params = self._next
        try:
            response = session().get(url, params=params, headers=auth_headers(), timeout=REQUEST_TIMEOUT)
            hf_raise_for_status(response)
            items = response.json()
        except Exception as exc:  # noqa: BLE001 - one clear line for the user
            raise translate(exc, "search the hub") from None
        link = response.links.get("next", {}).get("url")
        self._next = (link, None) if link else None  # the next link carries all query params
        self.pages_fetched += 1
        results = []
        for item in items:
            item.setdefault("siblings", None)
            results.append(_result(ModelInfo(**item)))
        return results


def search(query: str = "", *, filter: str = "gguf", sort: str = "trending", limit: int = 20) -> list[SearchResult]:
    """The first `limit` results, through `HfApi.list_models` (what the CLI wants)."""
    check_online("search the hub")
    if filter not in FILTERS:
        raise ValueError(f"unknown filter {filter!r}; choose one of {', '.join(FILTERS)}")
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; choose one of {', '.join(SORTS)}")
    try:
        return [_result(info) for info in api().list_models(
            search=query or None, sort=SORTS[sort], limit=limit, expand=_EXPAND, **FILTERS[filter])]
    except Exception as exc:  # noqa: BLE001 - one clear line for the user
        raise translate(exc, "search the hub") from None
