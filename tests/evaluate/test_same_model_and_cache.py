"""Issue 14 item 3, the core half: a quant of another model is refused before any scoring (here
and in `quantdesk eval`, exit 2), and a finished report is cached per (reference, quant, text,
context, chunks) so a comparison with one more quant scores only that one.

The llama.cpp passes are replaced by a counting stand-in (`run_job`); the GGUF files, their
checks and the caches are the real ones."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantdesk.core.evaluate import EvaluationError, compare

TEXT = "the user's own text " * 40


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory) -> dict[str, Path]:
    from hub.ggufs import write_model
    root = tmp_path_factory.mktemp("same-model")
    made = {q: write_model(root / f"tiny-{q}.gguf", q)[0] for q in ("F16", "Q8_0", "Q4_K_M")}
    made["wider"] = write_model(root / "other-Q8_0.gguf", "Q8_0", n_embd=512)[0]
    made["qwen"] = write_model(root / "qwen-Q8_0.gguf", "Q8_0", arch="qwen2")[0]
    return made


@pytest.fixture
def passes(monkeypatch):
    """The llama.cpp passes compare() asked for, as (kind, file name); deterministic numbers."""
    from quantdesk.core.evaluate import report
    calls = []

    def run_job(kind, payload, *, progress=None, cancelled=None):
        name = Path(payload["path"]).name
        calls.append((kind, name))
        if progress:
            progress(1, 1)
        n = 16
        if kind == "reference":
            out = Path(payload["out"])
            np.save(out / "nll.npy", np.full(n, 2.0))
            return dict(n_vocab=12000, n_chunks=1, n_ctx=payload["n_ctx"], add_bos=False,
                        n_tokens=64)
        kld = 0.01 * (1 + len(name) % 7)
        return dict(nll=np.full(n, 2.1), kld=np.full(n, kld), same_top=np.ones(n, bool),
                    n_chunks=1)
    monkeypatch.setattr(report, "run_job", run_job)
    return calls


def test_adding_one_quant_scores_only_that_one(ggufs, passes, tmp_path):
    ref, q8, q4 = ggufs["F16"], ggufs["Q8_0"], ggufs["Q4_K_M"]
    cache_dir = tmp_path / "cache"
    first = compare([q8], ref, TEXT, n_ctx=64, cache_dir=cache_dir)
    assert passes == [("reference", ref.name), ("compare", q8.name)]

    passes.clear()
    seen = []
    second = compare([q8, q4], ref, TEXT, n_ctx=64, cache_dir=cache_dir, on_result=seen.append)
    assert passes == [("compare", q4.name)]                 # the new quant only, no reference
    assert [r.model for r in second] == [str(q8), str(q4)]  # in the order asked
    assert second[0] == first[0] and [r.model for r in seen] == [str(q8), str(q4)]

    passes.clear()
    assert compare([q4, q8], ref, TEXT, n_ctx=64, cache_dir=cache_dir) == second[::-1]
    assert passes == []                                     # nothing new: nothing runs

    # Another text, context or chunk limit is another measurement.
    compare([q8], ref, TEXT + "more", n_ctx=64, cache_dir=cache_dir)
    compare([q8], ref, TEXT, n_ctx=128, cache_dir=cache_dir)
    compare([q8], ref, TEXT, n_ctx=64, max_chunks=1, cache_dir=cache_dir)
    assert [k for k, _ in passes] == ["reference", "compare"] * 3


def test_a_changed_quant_file_is_scored_again(ggufs, passes, tmp_path):
    import shutil
    ref = ggufs["F16"]
    mine = tmp_path / "mine-Q8_0.gguf"
    shutil.copyfile(ggufs["Q8_0"], mine)
    compare([mine], ref, TEXT, n_ctx=64, cache_dir=tmp_path / "c")
    shutil.copyfile(ggufs["Q4_K_M"], mine)          # same name, other bytes
    passes.clear()
    [again] = compare([mine], ref, TEXT, n_ctx=64, cache_dir=tmp_path / "c")
    assert passes == [("compare", mine.name)] and again.file_type == "Q4_K_M"


@pytest.mark.parametrize("stranger, why", [("wider", "tensor token_embd.weight is 512x12000 there, "
                                                     "256x12000 in the reference"),
                                           ("qwen", "its architecture is qwen2, the reference's is llama")])
def test_a_quant_of_another_model_is_refused_before_scoring(ggufs, passes, tmp_path, stranger, why):
    with pytest.raises(EvaluationError) as err:
        compare([ggufs["Q8_0"], ggufs[stranger]], ggufs["F16"], TEXT, n_ctx=64,
                cache_dir=tmp_path)
    message = str(err.value)
    assert message.startswith(f"{ggufs[stranger].name} is not a quant of tiny-F16.gguf: ")
    assert why in message and "\n" not in message
    assert passes == []                                     # nothing was scored


def test_eval_command_refuses_a_stranger_with_exit_2(ggufs, passes, tmp_path, capsys):
    from quantdesk.core.cli import main
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    rc = main(["eval", str(ggufs["wider"]), "--reference", str(ggufs["F16"]), "--text", str(text)])
    err = capsys.readouterr().err
    assert rc == 2 and "is not a quant of tiny-F16.gguf" in err and passes == []
