"""The host's token log-probabilities against llama-cpp-python's own (a model created with
logits_all=True, the same settings), and the stop string the host reports as the reply's end."""
from __future__ import annotations

import math

import pytest

from quantdesk.core.engine import Done, EngineClient, SamplingParams

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def client(starter_model):
    c = EngineClient()
    c.load(starter_model, n_ctx=512, n_threads=1, flash_attn="off")
    yield c
    c.shutdown()


def run(client, **kw):
    params = SamplingParams(**{"temperature": 0, "max_tokens": 5, "seed": 1, **kw})
    events = list(client.generate([], params, prompt=PROMPT))
    return events[:-1], events[-1]


def test_logprobs_are_llama_cpps_own(client, starter_model):
    import llama_cpp
    tokens, done = run(client, logprobs=3)
    entries = [e for t in tokens for e in t.logprobs]
    assert len(entries) == done.completion_tokens == 5
    assert "".join(e["token"] for e in entries) == "".join(t.text for t in tokens)

    llm = llama_cpp.Llama(str(starter_model), n_ctx=512, n_threads=1, logits_all=True,
                          flash_attn=False, verbose=False)
    try:
        ref = llm.create_completion(PROMPT, max_tokens=5, temperature=0, logprobs=3,
                                    repeat_penalty=SamplingParams().repeat_penalty)
    finally:
        llm.close()
    lp = ref["choices"][0]["logprobs"]
    assert [e["token"] for e in entries] == lp["tokens"]
    for ours, value, top in zip(entries, lp["token_logprobs"], lp["top_logprobs"]):
        assert ours["logprob"] == pytest.approx(float(value), abs=1e-4)
        assert ours["bytes"] == list(ours["token"].encode())
        assert [t["token"] for t in ours["top"]] == list(top)[:3]
        for t in ours["top"]:
            assert t["logprob"] == pytest.approx(float(top[t["token"]]), abs=1e-4)
        assert sum(math.exp(t["logprob"]) for t in ours["top"]) <= 1.0


def test_without_logprobs_tokens_carry_none_and_the_text_is_the_same(client):
    plain, _ = run(client)
    with_lp, _ = run(client, logprobs=0)
    assert all(t.logprobs is None for t in plain)
    assert "".join(t.text for t in plain) == "".join(t.text for t in with_lp)
    assert all(e["top"] == [] for t in with_lp for e in t.logprobs)


def test_the_stop_string_that_ended_the_reply_is_named(client):
    _, done = run(client, stop=("London", "."))
    assert isinstance(done, Done) and done.finish_reason == "stop"
    assert done.stop_sequence == "."
    _, done = run(client, stop=("London",))
    assert done.finish_reason == "length" and done.stop_sequence is None
