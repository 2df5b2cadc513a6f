"""The arithmetic of a quality report, in numpy, following llama.cpp's `llama-perplexity`.

* Chunks: the token stream (tokenized with the model's special tokens, so with BOS where the model
  wants one) is cut into `len // n_ctx` windows of n_ctx tokens; each window is evaluated from an
  empty KV cache with its first token replaced by BOS when the model adds BOS. Only the second
  half is scored: the logits at positions first..n_ctx-2 (first = n_ctx // 2) predict tokens
  first+1..n_ctx-1, so every scored token has at least n_ctx/2 tokens of context.
* Reference log-probabilities are stored the way llama.cpp's `--kl-divergence-base` file stores
  them: per token a float32 scale and minimum, then one uint16 per vocabulary entry, logits
  clamped at 16 below the maximum. That halves the cache against float32 with ~1e-4 resolution
  where it matters (float16 would be 64x coarser at log-prob -20).
* KL-divergence per token is sum_i p_ref(i) * (log p_ref(i) - log p_q(i)), skipping reference
  log-probs at or below -16 exactly as llama.cpp does.
"""
from __future__ import annotations

import numpy as np

CLAMP = 16.0          # llama.cpp ignores reference log-probs more than 16 below the top one


def chunk_layout(n_tokens: int, n_ctx: int, max_chunks: int | None = None) -> tuple[int, int, int]:
    """(n_chunks, first, scored_per_chunk) for a text of n_tokens tokens."""
    n_chunks = n_tokens // n_ctx
    if max_chunks is not None and max_chunks > 0:
        n_chunks = min(n_chunks, max_chunks)
    first = n_ctx // 2
    return n_chunks, first, n_ctx - first - 1


def chunk_tokens(tokens: np.ndarray, index: int, n_ctx: int, bos: int | None) -> np.ndarray:
    """The window evaluated for chunk `index`, its first token replaced by BOS if the model adds one."""
    window = np.array(tokens[index * n_ctx:(index + 1) * n_ctx], dtype=np.int32)
    if bos is not None:
        window[0] = bos
    return window


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Rows of float32 logits -> log-probabilities (float32), max-shifted for stability."""
    logits = np.asarray(logits, dtype=np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted, dtype=np.float64).sum(axis=1, keepdims=True))
    return (shifted - lse).astype(np.float32)


def token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of each target token (float64), as llama.cpp computes it."""
    logits = np.asarray(logits, dtype=np.float32)
    mx = logits.max(axis=1)
    lse = np.log(np.exp(logits - mx[:, None], dtype=np.float64).sum(axis=1))
    picked = logits[np.arange(len(targets)), targets].astype(np.float64)
    return mx.astype(np.float64) + lse - picked


def compress_log_probs(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """llama.cpp's compact form of each row's log-probs: (uint16 values, float32 [scale, min])."""
    logits = np.asarray(logits, dtype=np.float32)
    mx = logits.max(axis=1)
    mn = np.maximum(logits.min(axis=1), mx - np.float32(CLAMP))
    lse = np.log(np.exp(logits - mx[:, None], dtype=np.float64).sum(axis=1)).astype(np.float32)
    scale = (mx - mn) / np.float32(65535.0)
    params = np.stack([scale, mn - mx - lse], axis=1).astype(np.float32)
    inv = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1), 0).astype(np.float32)
    q = np.rint(inv[:, None] * (logits - mn[:, None]))
    q = np.where(logits > mn[:, None], q, 0)
    return np.clip(q, 0, 65535).astype(np.uint16), params


def expand_log_probs(values: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Inverse of compress_log_probs: float32 log-probs (values below the clamp read as the min)."""
    return (params[:, 0:1] * values.astype(np.float32) + params[:, 1:2]).astype(np.float32)


def kl_divergence(ref_values: np.ndarray, ref_params: np.ndarray,
                  logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-token KL(ref || model) and whether both put the same token on top."""
    ref_lp = expand_log_probs(ref_values, ref_params)
    lp = log_softmax(logits)
    keep = ref_lp > -CLAMP
    terms = np.where(keep, np.exp(ref_lp) * (ref_lp - lp), 0.0)
    kld = terms.sum(axis=1, dtype=np.float64)
    same_top = np.argmax(ref_values, axis=1) == np.argmax(np.asarray(logits), axis=1)
    return kld, same_top


def perplexity(nll: np.ndarray) -> float:
    return float(np.exp(np.mean(nll))) if len(nll) else float("nan")
