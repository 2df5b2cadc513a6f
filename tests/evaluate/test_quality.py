"""Quality reports on SmolLM2-135M: reference PPL against llama-cpp-python's own logits, KLD order
of llama.cpp's quants, cache reuse, cancel, CSV. Models run in child processes as in the app."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from quantdesk.core.evaluate import (Cancelled, CancelToken, EvaluationError, compare, evaluate,
                                     write_csv)

N_CTX = 128          # small windows keep these tests to a few minutes on 2 cores
CHUNKS = 4

QUANTS = ("Q8_0", "Q6_K", "Q4_K_M", "Q2_K")


def _llama_cpp_perplexity(path, text: str, n_ctx: int, n_chunks: int) -> tuple[float, int]:
    """Perplexity from llama-cpp-python's high-level Llama (all logits), chunked as llama-perplexity."""
    import llama_cpp
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True,
                          n_threads=2, verbose=False)
    try:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        add_bos = llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model))
        first = n_ctx // 2
        nll = []
        for c in range(n_chunks):
            window = list(tokens[c * n_ctx:(c + 1) * n_ctx])
            if add_bos:
                window[0] = llm.token_bos()
            llm.reset()
            llm.eval(window)
            logits = np.array(llm.scores[first:n_ctx - 1], dtype=np.float64)
            targets = tokens[c * n_ctx + first + 1:(c + 1) * n_ctx]
            m = logits.max(axis=1)
            lse = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
            nll.extend(lse - logits[np.arange(len(targets)), targets])
        return float(np.exp(np.mean(nll))), len(nll)
    finally:
        llm.close()


@pytest.fixture(scope="module")
def run(f32_reference, make_quant, heldout_text, tmp_path_factory):
    quants = [make_quant(t) for t in QUANTS]
    cache_dir = tmp_path_factory.mktemp("ref-cache")
    events = []
    reports = compare(quants, f32_reference, heldout_text, n_ctx=N_CTX, max_chunks=CHUNKS,
                      threads=2, cache_dir=cache_dir, progress=events.append)
    return dict(reports=reports, events=events, cache_dir=cache_dir, quants=quants)


@pytest.mark.slow
def test_reference_ppl_matches_llama_cpp_python(run, f32_reference, heldout_text):
    report = run["reports"][0]
    ppl, scored = _llama_cpp_perplexity(f32_reference, heldout_text, N_CTX, CHUNKS)
    assert report.tokens == scored == CHUNKS * (N_CTX - N_CTX // 2 - 1)
    assert abs(report.ref_ppl / ppl - 1) < 1e-3, (report.ref_ppl, ppl)


@pytest.mark.slow
def test_kld_grows_as_bits_shrink(run, f32_reference):
    reports = run["reports"]
    assert [r.file_type for r in reports] == list(QUANTS)
    klds = [r.kld_mean for r in reports]
    assert klds == sorted(klds) and len(set(klds)) == len(klds), klds
    sizes = [r.size_bytes for r in reports]
    assert sizes == sorted(sizes, reverse=True)
    for r in reports:
        assert r.reference == str(f32_reference)
        assert 0 < r.kld_mean <= r.kld_p99 <= r.kld_max
        assert 0.5 < r.top1_agreement <= 1.0
        assert np.isfinite(r.ppl) and r.ppl > 1
    assert reports[-1].ppl > reports[0].ppl
    assert reports[0].top1_agreement >= reports[-1].top1_agreement


@pytest.mark.slow
def test_progress_covers_reference_then_each_model(run):
    events = run["events"]
    assert [e.stage for e in events][0] == "reference"
    assert {e.model for e in events if e.stage == "model"} == {q.name for q in run["quants"]}
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.slow
def test_reference_logits_and_reports_are_cached(run, f32_reference, heldout_text):
    import shutil

    from quantdesk.core.evaluate.cache import REPORTS
    entries = [d for d in run["cache_dir"].iterdir() if d.name != REPORTS]
    assert len(entries) == 1 and not entries[0].name.endswith(".part")
    assert len(list((run["cache_dir"] / REPORTS).glob("*.json"))) == len(QUANTS)
    events = []
    cached = evaluate(run["quants"][0], f32_reference, heldout_text, n_ctx=N_CTX,
                      max_chunks=CHUNKS, threads=2, cache_dir=run["cache_dir"],
                      progress=events.append)
    assert events == [] and cached == run["reports"][0]      # the finished report: nothing ran
    shutil.rmtree(run["cache_dir"] / REPORTS)
    again = evaluate(run["quants"][0], f32_reference, heldout_text, n_ctx=N_CTX,
                     max_chunks=CHUNKS, threads=2, cache_dir=run["cache_dir"],
                     progress=events.append)
    assert {e.stage for e in events} == {"model"}             # the reference did not run again
    assert again.kld_mean == pytest.approx(run["reports"][0].kld_mean, rel=1e-9)
    assert again.ref_ppl == run["reports"][0].ref_ppl


@pytest.mark.slow
def test_csv_export(run, tmp_path):
    path = write_csv(run["reports"], tmp_path / "quality.csv")
    rows = list(csv.DictReader(path.open()))
    assert [r["file_type"] for r in rows] == list(QUANTS)
    for row, rep in zip(rows, run["reports"]):
        assert float(row["kld_mean"]) == pytest.approx(rep.kld_mean, rel=1e-5)
        assert int(row["size_bytes"]) == rep.size_bytes
        assert row["pareto"] == "1"      # smaller is always worse here: every point is on the front


@pytest.mark.slow
def test_cancel_leaves_no_cache_entry(f32_reference, make_quant, heldout_text, tmp_path):
    token = CancelToken()

    def progress(p):
        if p.done >= 1:
            token.cancel()
    with pytest.raises(Cancelled):
        evaluate(make_quant("Q8_0"), f32_reference, heldout_text, n_ctx=N_CTX, threads=2,
                 cache_dir=tmp_path, progress=progress, cancel=token)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_text_shorter_than_one_window_is_refused(f32_reference, tmp_path):
    with pytest.raises(EvaluationError, match="too short"):
        evaluate(f32_reference, f32_reference, "Just a few words.", n_ctx=N_CTX, threads=2,
                 cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_fail_before_any_model_runs(tmp_path, starter_model):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(EvaluationError) as err:
        evaluate(junk, starter_model, "some text " * 50, cache_dir=tmp_path / "c")
    assert "junk.gguf" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(EvaluationError, match="does not exist"):
        from quantdesk.core.evaluate import read_text
        read_text(tmp_path / "missing.txt")
    with pytest.raises(EvaluationError, match="empty"):
        evaluate(starter_model, starter_model, "   ", cache_dir=tmp_path / "c")


@pytest.mark.slow
def test_killed_model_process_is_a_one_line_error(f32_reference, heldout_text, tmp_path):
    import signal

    import psutil
    killed = []

    def progress(_p):
        for child in psutil.Process().children():
            if not killed and "spawn_main" in " ".join(child.cmdline()):
                child.send_signal(signal.SIGKILL)
                killed.append(child.pid)
    with pytest.raises(EvaluationError) as err:
        evaluate(f32_reference, f32_reference, heldout_text, n_ctx=N_CTX, threads=2,
                 cache_dir=tmp_path, progress=progress)
    assert killed and "exited unexpectedly" in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []
