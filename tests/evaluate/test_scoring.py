"""The report's arithmetic against direct float64 formulas (fast, no model)."""
from __future__ import annotations

import numpy as np

from quantdesk.core.evaluate import scoring


def _exact_log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def test_chunk_layout_follows_llama_perplexity():
    # n_chunk = tokens / n_ctx; the second half is scored, minus the last position (no target).
    assert scoring.chunk_layout(1000, 128) == (7, 64, 63)
    assert scoring.chunk_layout(1000, 128, max_chunks=3) == (3, 64, 63)
    assert scoring.chunk_layout(100, 128)[0] == 0


def test_chunk_tokens_puts_bos_first_only_when_the_model_adds_it():
    tokens = np.arange(10, 30, dtype=np.int32)
    assert scoring.chunk_tokens(tokens, 1, 8, bos=1).tolist() == [1] + list(range(19, 26))
    assert scoring.chunk_tokens(tokens, 1, 8, bos=None).tolist() == list(range(18, 26))
    assert tokens[8] == 18   # the stream itself is untouched


def test_token_nll_matches_float64_log_softmax():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((5, 300)) * 4).astype(np.float32)
    targets = rng.integers(0, 300, 5)
    expected = -_exact_log_softmax(logits)[np.arange(5), targets]
    np.testing.assert_allclose(scoring.token_nll(logits, targets), expected, rtol=1e-5)


def test_compressed_log_probs_round_trip_within_llama_cpp_resolution():
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((4, 1000)) * 3).astype(np.float32)
    values, params = scoring.compress_log_probs(logits)
    assert values.dtype == np.uint16 and params.shape == (4, 2)
    back = scoring.expand_log_probs(values, params)
    exact = _exact_log_softmax(logits)
    kept = exact > exact.max(axis=1, keepdims=True) - 16
    step = params[:, :1] * np.ones_like(back)
    assert np.all(np.abs(back - exact)[kept] <= step[kept] + 1e-5)


def test_kl_divergence_matches_the_definition():
    rng = np.random.default_rng(2)
    ref = (rng.standard_normal((6, 500)) * 2).astype(np.float32)
    model = ref + (rng.standard_normal((6, 500)) * 0.3).astype(np.float32)
    values, params = scoring.compress_log_probs(ref)
    kld, same = scoring.kl_divergence(values, params, model)
    p, q = _exact_log_softmax(ref), _exact_log_softmax(model)
    exact = (np.exp(p) * (p - q)).sum(axis=1)
    np.testing.assert_allclose(kld, exact, rtol=2e-3, atol=1e-5)
    assert np.array_equal(same, ref.argmax(1) == model.argmax(1))
    kld_self, same_self = scoring.kl_divergence(values, params, ref)
    assert np.all(np.abs(kld_self) < 1e-3) and same_self.all()


def test_perplexity_is_exp_of_mean_nll():
    assert abs(scoring.perplexity(np.array([1.0, 2.0, 3.0])) - np.exp(2.0)) < 1e-12
