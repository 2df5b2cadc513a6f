"""logprobs / top_logprobs (chat and completions, streamed and not) and the stop sequence that
ended a reply, through the official clients against `quantdesk serve` with the starter model."""
from __future__ import annotations

import math

import pytest

from .server_process import STARTER_ID

PARIS = "The capital of France is"
ASK = [{"role": "user", "content": "What is the capital of France?"}]


def chat(client, **kw):
    args = dict(model=STARTER_ID, messages=ASK, max_tokens=6, temperature=0, seed=1)
    return client.chat.completions.create(**{**args, **kw})


def test_chat_logprobs_plain_and_streamed(openai_client):
    reply = chat(openai_client, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens == 6
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for t in content:
        assert t.bytes == list(t.token.encode()) and t.logprob <= 0
        assert [x.token for x in t.top_logprobs][0] == t.token      # greedy: the best one
        assert [x.logprob for x in t.top_logprobs] == sorted(
            (x.logprob for x in t.top_logprobs), reverse=True)
        assert len(t.top_logprobs) == 3
        assert sum(math.exp(x.logprob) for x in t.top_logprobs) <= 1.0

    chunks = list(chat(openai_client, logprobs=True, top_logprobs=3, stream=True))
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs
                for t in c.choices[0].logprobs.content]
    assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in content]
    for c in chunks:   # each chunk carries the logprobs of its own text
        if c.choices and c.choices[0].delta.content:
            assert "".join(t.token for t in c.choices[0].logprobs.content) == \
                c.choices[0].delta.content

    plain = chat(openai_client)
    assert plain.choices[0].logprobs is None
    assert plain.choices[0].message.content == reply.choices[0].message.content
    only = chat(openai_client, logprobs=True)           # no top_logprobs: none listed
    assert all(t.top_logprobs == [] for t in only.choices[0].logprobs.content)


def test_completion_logprobs_are_llama_cpps(openai_client, starter_model):
    import llama_cpp
    out = openai_client.completions.create(model=STARTER_ID, prompt=PARIS, max_tokens=4,
                                           temperature=0, logprobs=2)
    lp = out.choices[0].logprobs
    assert "".join(lp.tokens) == out.choices[0].text
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(4)]
    for top, tok, value in zip(lp.top_logprobs, lp.tokens, lp.token_logprobs):
        assert len(top) == 2 and list(top.values()) == sorted(top.values(), reverse=True)
        if tok in top:     # greedy after the repeat penalty: not always the model's first
            assert top[tok] == value
    assert list(lp.top_logprobs[0])[0] == lp.tokens[0]

    # llama-cpp-python's own logprobs (a model made with logits_all), the server's settings
    llm = llama_cpp.Llama(str(starter_model), n_ctx=512, n_threads=2, logits_all=True,
                          flash_attn=True, verbose=False)
    try:
        ref = llm.create_completion(PARIS, max_tokens=4, temperature=0, logprobs=2,
                                    repeat_penalty=1.1)["choices"][0]["logprobs"]
    finally:
        llm.close()
    assert lp.tokens == ref["tokens"]
    assert lp.token_logprobs == pytest.approx([float(x) for x in ref["token_logprobs"]],
                                              abs=1e-3)

    echo = openai_client.completions.create(model=STARTER_ID, prompt=PARIS, max_tokens=4,
                                            temperature=0, logprobs=2, echo=True)
    assert echo.choices[0].logprobs.text_offset[0] == len(PARIS)
    chunks = list(openai_client.completions.create(model=STARTER_ID, prompt=PARIS, max_tokens=4,
                                                   temperature=0, logprobs=2, stream=True))
    tokens = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    assert tokens == lp.tokens


def test_anthropic_says_which_stop_sequence_ended_the_reply(anthropic_client):
    greedy = {"temperature": 0}
    free = anthropic_client.messages.create(model=STARTER_ID, max_tokens=12, extra_body=greedy,
                                            messages=ASK)
    text = free.content[0].text
    word = text.split()[1]                       # a word the reply really says, not first
    msg = anthropic_client.messages.create(model=STARTER_ID, max_tokens=12, extra_body=greedy,
                                           messages=ASK, stop_sequences=["zebra", word])
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == word
    assert msg.content[0].text == text[:text.index(word)]
    with anthropic_client.messages.stream(model=STARTER_ID, max_tokens=12, extra_body=greedy,
                                          messages=ASK, stop_sequences=["zebra", word]) as s:
        final = s.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == word
    none = anthropic_client.messages.create(model=STARTER_ID, max_tokens=12, extra_body=greedy,
                                            messages=ASK, stop_sequences=["zebra"])
    assert none.stop_reason != "stop_sequence" and none.stop_sequence is None
