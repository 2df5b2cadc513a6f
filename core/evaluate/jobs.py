"""The jobs the evaluation child process runs (imported only there: they load llama_cpp).

Each job is `job(payload, progress(done, total), cancelled() -> bool) -> picklable result`.
Large arrays (the reference's log-probs) go to .npy files in a folder the parent names; only
small per-token arrays travel back over the pipe.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import scoring
from .llama_session import LlamaSession


class JobCancelled(Exception):
    pass


def _threads(payload: dict) -> int:
    n = payload.get("threads")
    if n:
        return int(n)
    import psutil
    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def _open(payload: dict, **kw) -> LlamaSession:
    return LlamaSession(payload["path"], n_ctx=int(payload["n_ctx"]), n_threads=_threads(payload),
                        n_gpu_layers=int(payload.get("n_gpu_layers", 0)), **kw)


def _layout(session: LlamaSession, tokens: np.ndarray, payload: dict):
    n_ctx = int(payload["n_ctx"])
    n_chunks, first, per_chunk = scoring.chunk_layout(len(tokens), n_ctx, payload.get("max_chunks"))
    if n_chunks < 1:
        raise ValueError(f"the text is too short: {len(tokens)} tokens, a context of {n_ctx} "
                         f"needs at least {n_ctx} (use a longer text or a smaller context)")
    return n_chunks, first, per_chunk


def reference(payload: dict, progress, cancelled) -> dict:
    """Reference pass: exact NLL per scored token, plus compressed log-probs written to payload['out']."""
    out = Path(payload["out"])
    session = _open(payload)
    try:
        tokens = session.tokenize(payload["text"])
        n_chunks, first, per_chunk = _layout(session, tokens, payload)
        n_ctx = int(payload["n_ctx"])
        n_scored = n_chunks * per_chunk
        np.save(out / "tokens.npy", tokens[:n_chunks * n_ctx])
        values = np.lib.format.open_memmap(out / "values.npy", mode="w+", dtype=np.uint16,
                                           shape=(n_scored, session.n_vocab))
        params = np.zeros((n_scored, 2), dtype=np.float32)
        nll = np.zeros(n_scored, dtype=np.float64)
        progress(0, n_chunks)
        for c in range(n_chunks):
            if cancelled():
                raise JobCancelled
            window = scoring.chunk_tokens(tokens, c, n_ctx, session.bos)
            logits = session.logits(window, first)[:per_chunk]
            targets = tokens[c * n_ctx + first + 1:(c + 1) * n_ctx]
            rows = slice(c * per_chunk, (c + 1) * per_chunk)
            nll[rows] = scoring.token_nll(logits, targets)
            values[rows], params[rows] = scoring.compress_log_probs(logits)
            progress(c + 1, n_chunks)
        values.flush()
        del values
        np.save(out / "params.npy", params)
        np.save(out / "nll.npy", nll)
        return dict(n_vocab=session.n_vocab, n_chunks=n_chunks, n_ctx=n_ctx,
                    add_bos=session.add_bos, n_tokens=int(len(tokens)))
    finally:
        session.close()


def compare(payload: dict, progress, cancelled) -> dict:
    """Model pass against a cached reference: NLL, KL-divergence and top-1 match per scored token."""
    ref = Path(payload["reference_dir"])
    ref_tokens = np.load(ref / "tokens.npy")
    ref_values = np.load(ref / "values.npy", mmap_mode="r")
    ref_params = np.load(ref / "params.npy")
    session = _open(payload)
    try:
        if session.n_vocab != ref_values.shape[1]:
            raise ValueError(f"the model's vocabulary ({session.n_vocab} tokens) differs from the "
                             f"reference's ({ref_values.shape[1]}); compare quants of the same model")
        tokens = session.tokenize(payload["text"])
        n_chunks, first, per_chunk = _layout(session, tokens, payload)
        n_ctx = int(payload["n_ctx"])
        if not np.array_equal(tokens[:n_chunks * n_ctx], ref_tokens):
            raise ValueError("the model tokenizes the text differently from the reference; "
                             "compare quants of the same model")
        nll = np.zeros(n_chunks * per_chunk)
        kld = np.zeros(n_chunks * per_chunk)
        same = np.zeros(n_chunks * per_chunk, dtype=bool)
        progress(0, n_chunks)
        for c in range(n_chunks):
            if cancelled():
                raise JobCancelled
            window = scoring.chunk_tokens(tokens, c, n_ctx, session.bos)
            logits = session.logits(window, first)[:per_chunk]
            targets = tokens[c * n_ctx + first + 1:(c + 1) * n_ctx]
            rows = slice(c * per_chunk, (c + 1) * per_chunk)
            nll[rows] = scoring.token_nll(logits, targets)
            kld[rows], same[rows] = scoring.kl_divergence(np.asarray(ref_values[rows]),
                                                          ref_params[rows], logits)
            progress(c + 1, n_chunks)
        return dict(nll=nll, kld=kld, same_top=same, n_chunks=n_chunks)
    finally:
        session.close()


def imatrix(payload: dict, progress, cancelled) -> dict:
    """Importance matrix: mean squares of every blk.* matmul input over the calibration text
    (payload["mtp"]: the model's MTP layer's too, run after each window as MTP drafting runs it)."""
    from quantdesk.core.imatrix.collect import Collector
    collector = Collector(process_output=bool(payload.get("process_output", False)))
    mtp = bool(payload.get("mtp", False))
    session = _open(payload, cb_eval=collector.callback, mtp=mtp)
    try:
        tokens = session.tokenize(payload["text"])
        n_chunks, _first, _ = _layout(session, tokens, payload)
        n_ctx = int(payload["n_ctx"])
        progress(0, n_chunks)
        for c in range(n_chunks):
            if cancelled():
                raise JobCancelled
            window = scoring.chunk_tokens(tokens, c, n_ctx, session.bos)
            session.logits(window, 0)        # all outputs, as llama-imatrix asks: every layer sees every token
            if mtp:
                session.mtp_pass(window)
            collector.raise_error()
            progress(c + 1, n_chunks)
        return dict(entries=collector.entries(), chunk_count=n_chunks, chunk_size=n_ctx)
    finally:
        session.close()
