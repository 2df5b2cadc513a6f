"""`quantdesk eval` and `quantdesk imatrix` end to end (child processes, real SmolLM2)."""
from __future__ import annotations

import csv
import json

import pytest

from quantdesk.core.cli import main


@pytest.mark.slow
def test_eval_json(starter_model, f32_reference, heldout_text, tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text(heldout_text)
    rc = main(["eval", str(starter_model), "--reference", str(f32_reference), "--text", str(text),
               "--ctx", "128", "--chunks", "2", "--threads", "2", "--json",
               "--csv", str(tmp_path / "q.csv")])
    out = capsys.readouterr().out
    assert rc == 0
    data = json.loads(out)
    for key in ("ppl", "ref_ppl", "kld_mean", "kld_p99", "top1_agreement", "tokens"):
        assert key in data
    assert data["tokens"] == 2 * 63
    assert data["file_type"] == "Q4_1" and 0 < data["kld_mean"] < data["kld_p99"] < 1
    assert 1 < data["ref_ppl"] < data["ppl"] < 1000 and 0.5 < data["top1_agreement"] <= 1
    rows = list(csv.DictReader(open(tmp_path / "q.csv")))
    assert len(rows) == 1 and float(rows[0]["kld_mean"]) == pytest.approx(data["kld_mean"], 1e-5)


@pytest.mark.slow
def test_imatrix_writes_and_refuses_to_overwrite(starter_model, calibration_text, tmp_path, capsys):
    from quantdesk.core.imatrix import load_imatrix
    text = tmp_path / "cal.txt"
    text.write_text(calibration_text)
    out = tmp_path / "imx.gguf"
    args = ["imatrix", str(starter_model), "--text", str(text), "-o", str(out), "--ctx", "64",
            "--chunks", "2", "--threads", "2"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    values = load_imatrix(out)
    assert len(values) == 30 * 7 and values["blk.0.ffn_down.weight"].shape == (1536,)
    before = out.read_bytes()
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_bad_input_is_one_line_exit_2(tmp_path, capsys, starter_model):
    rc = main(["eval", str(tmp_path / "nope.gguf"), "--reference", str(starter_model)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("quantdesk: ") and err.count("\n") <= 2
    rc = main(["imatrix", str(starter_model), "-o", str(tmp_path / "no-dir" / "x.gguf")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
