"""The load options through the real engine host: a q8_0 KV cache still answers sensibly, and
prompt-lookup decoding changes speed, never the greedy reply."""
from __future__ import annotations

import pytest

from quantdesk.core.engine import SamplingParams, Token
from quantdesk.core.runtime import LoadRequest, ModelManager

GREEDY = SamplingParams(temperature=0.0, max_tokens=48, seed=1)
PARIS = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
CODE = '''def total(items):
    result = 0
    for item in items:
        result = result + item.price * item.quantity
    return result
'''
EDIT = [{"role": "user", "content": "Rename the function `total` to `order_total` and give me "
         "the whole code again.\n\n```python\n" + CODE + "```"}]


def reply(host, messages, params=GREEDY) -> tuple[str, object]:
    text, done = "", None
    for event in host.generate(messages, params):
        if isinstance(event, Token):
            text += event.text
        else:
            done = event
    return text, done


@pytest.mark.slow
def test_a_q8_0_kv_cache_still_answers_paris(starter_model):
    manager = ModelManager()
    try:
        host = manager.load(LoadRequest(starter_model, n_ctx=1024, gpu_layers=0, n_threads=2,
                                        kv_type_k="q8_0", kv_type_v="q8_0", flash_attn="auto"))
        loaded = host.result
        assert (loaded.type_k, loaded.type_v, loaded.flash_attn) == ("q8_0", "q8_0", "auto")
        text, done = reply(host, PARIS)
        assert "Paris" in text and done.finish_reason in ("stop", "length")
    finally:
        manager.shutdown()


@pytest.mark.slow
def test_prompt_lookup_gives_the_same_greedy_reply(starter_model):
    manager = ModelManager(max_models=2)
    params = SamplingParams(temperature=0.0, max_tokens=64, seed=1)
    try:
        plain = manager.load(LoadRequest(starter_model, n_ctx=1024, gpu_layers=0, n_threads=2))
        lookup = manager.load(LoadRequest(starter_model, n_ctx=1024, gpu_layers=0, n_threads=2,
                                          prompt_lookup=10))
        assert plain is not lookup and lookup.result.prompt_lookup == 10
        replies = []
        for messages in (EDIT, PARIS):
            (a, done_a), (b, done_b) = reply(plain, messages, params), reply(lookup, messages,
                                                                             params)
            assert a == b and a.strip()
            assert done_a.completion_tokens == done_b.completion_tokens
            replies.append(a)
        assert "item.price" in replies[0]     # the code came back: drafts had something to copy
    finally:
        manager.shutdown()
