"""Token log-probabilities of a reply, from llama.cpp's logits (the server's `logprobs`).

llama-cpp-python computes logprobs only for a model created with logits_all=True, which keeps a
row of logits for every position of the context (n_ctx x n_vocab floats) and would need a second
load. Instead, while a reply that asks for them is sampled, Llama.sample is wrapped: when it
returns a token, the logits it sampled from are still in llama.cpp's output buffer
(llama_get_logits_ith: the sampler chain works on a copy, the next decode has not run yet), so
their log-softmax gives the token's log-probability and the top n alternatives. (A logits
processor would see the same row, but llama-cpp-python then rebuilds a numpy view of the whole
vocabulary through ctypes for every token, which measured several times slower.) The values are
the model's own distribution, before temperature, penalties and grammar (what llama.cpp's
n_probs reports by default). Entries wait in `pending` until the text of their tokens is sent
(host_generate.py attaches them to the next "token" event); entries whose text never goes out
(end of generation, a stop string) are dropped, as OpenAI does.

Every chosen token is also kept in `chosen` (also without logprobs): the host finds from them
which stop string ended a reply.
"""
from __future__ import annotations

import contextlib

MAX_TOP = 20   # OpenAI's limit for top_logprobs


class TokenRecorder:
    def __init__(self, llm, top: int | None):
        """top: None records only the chosen tokens; n >= 0 also their logprobs and top n."""
        self.llm = llm
        self.top = None if top is None else max(0, min(int(top), MAX_TOP))
        self.chosen: list[int] = []
        self.pending: list[dict] = []
        self._row = None

    def _logits(self, idx) -> None:
        """Keep the row of logits the token at `idx` (Llama.sample's idx) was sampled from."""
        import llama_cpp
        import numpy as np
        llm = self.llm
        ridx = idx - llm.n_tokens if idx is not None else -1   # as Llama.sample computes it
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, ridx)
        self._row = np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float64)

    def _piece(self, token: int, logprob: float) -> dict:
        raw = self.llm._model.detokenize([token])
        return {"token": raw.decode("utf-8", errors="replace"), "bytes": list(raw),
                "logprob": float(logprob)}

    def _record(self, token: int) -> None:
        import numpy as np
        self.chosen.append(int(token))
        row, self._row = self._row, None
        if self.top is None or row is None:
            return
        peak = row.max()
        logprobs = row - (peak + np.log(np.exp(row - peak).sum()))
        top = []
        if self.top:
            best = np.argpartition(-logprobs, self.top)[:self.top]
            best = best[np.argsort(-logprobs[best], kind="stable")]
            top = [self._piece(int(i), logprobs[i]) for i in best]
        self.pending.append({**self._piece(int(token), logprobs[int(token)]), "top": top})

    def take(self) -> list[dict] | None:
        """The entries waiting for text (None when logprobs were not asked for)."""
        if self.top is None:
            return None
        out, self.pending = self.pending, []
        return out

    @contextlib.contextmanager
    def sampling(self):
        """Llama.sample wrapped for one reply."""
        llm = self.llm
        original = llm.sample

        def sample(*args, **kwargs):
            token = original(*args, **kwargs)
            if self.top is not None:
                self._logits(kwargs.get("idx"))
            self._record(token)
            return token
        llm.sample = sample   # an instance attribute: generate() calls self.sample(...)
        try:
            yield
        finally:
            del llm.sample

    def stop_sequence(self, stops) -> str | None:
        """Which of `stops` ended the reply: the one that occurs first in the chosen tokens'
        text (llama-cpp-python stops at the first one and cuts it from the text)."""
        if not stops or not self.chosen:
            return None
        text = self.llm._model.detokenize(self.chosen).decode("utf-8", errors="replace")
        found = [(text.find(s), i, s) for i, s in enumerate(stops) if s and s in text]
        return min(found)[2] if found else None
