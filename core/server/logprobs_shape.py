"""Token log-probabilities (core.engine.logprobs entries) in OpenAI's two shapes: the chat API's
`logprobs.content` list and the legacy completions API's parallel lists."""
from __future__ import annotations


def _one(entry: dict) -> dict:
    return {"token": entry["token"], "logprob": entry["logprob"], "bytes": entry["bytes"]}


def chat_logprobs(entries: list[dict] | None) -> dict | None:
    """choices[].logprobs of a chat completion (or of one streamed chunk)."""
    if entries is None:
        return None
    return {"content": [{**_one(e), "top_logprobs": [_one(t) for t in e["top"]]}
                        for e in entries], "refusal": None}


def completion_logprobs(entries: list[dict] | None, offset: int = 0) -> dict | None:
    """choices[].logprobs of a text completion; text_offset counts from `offset` (the length
    of what comes before the first token in the returned text: an echoed prompt)."""
    if entries is None:
        return None
    offsets, at = [], offset
    for e in entries:
        offsets.append(at)
        at += len(e["token"])
    return {"tokens": [e["token"] for e in entries],
            "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [{t["token"]: t["logprob"] for t in e["top"]} for e in entries],
            "text_offset": offsets}


def gather(events) -> list[dict] | None:
    """All entries of a reply's Token events (None when none carries logprobs)."""
    found = [e.logprobs for e in events if getattr(e, "logprobs", None) is not None]
    return [x for lp in found for x in lp] if found else None
