"""Search through the real huggingface_hub client against the fake hub."""
from __future__ import annotations

import pytest

from quantdesk.core import hub


def test_search_pages_lazily_following_link_headers(hub_env, fakehub):
    pager = hub.SearchPager("llama", filter="gguf", sort="downloads", page_size=3)
    assert fakehub.requests == []  # nothing fetched before the first page is asked for
    first = pager.next_page()
    assert [r.repo_id for r in first] == ["test-org/Tiny-Llama-GGUF", "gated-org/Secret-Llama-GGUF", "filler/llama-6-GGUF"]
    assert len(fakehub.requests) == 1
    seen = [r.repo_id for r in first]
    while page := pager.next_page():
        seen += [r.repo_id for r in page]
    # 9 GGUF repos match, 3 per page: three requests, the later ones through the Link cursor
    assert len(seen) == len(set(seen)) == 9
    assert pager.exhausted and pager.pages_fetched == 3
    searches = [path for _, path, _ in fakehub.requests if path.startswith("/api/models?")]
    assert len(searches) == 3 and "cursor=3" in searches[1] and "cursor=6" in searches[2]
    top = first[0]
    assert (top.author, top.name, top.downloads, top.likes, top.parameters, top.kind) == (
        "test-org", "Tiny-Llama-GGUF", 500, 50, 5_000_000, "gguf")
    assert first[1].gated


def test_search_limit_uses_list_models_and_filters(hub_env, fakehub):
    results = hub.search("", filter="safetensors", sort="likes", limit=5)
    assert [r.repo_id for r in results] == ["test-org/Tiny-Llama"]
    assert results[0].kind == "safetensors" and results[0].parameters == 1_235_814_400
    limited = hub.search("llama", filter="gguf", limit=2)
    assert len(limited) == 2


def test_search_offline_says_so_without_any_request(hub_env, fakehub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.OfflineError, match="offline"):
        hub.search("llama")
    assert fakehub.requests == []


def test_search_unreachable_hub_is_an_offline_error(hub_env, monkeypatch):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(hub.OfflineError, match="cannot be reached"):
        hub.SearchPager("x").next_page()
