"""`quantdesk quantize`: progress on stderr, the file written, one line and exit 2 on bad input."""
from __future__ import annotations

import subprocess
import sys

from gguf import GGUFReader


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "quantize", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_quantize_hf_folder_to_q8_0(tiny_hf, tmp_path):
    out = tmp_path / "tiny-Q8_0.gguf"
    proc = _cli(str(tiny_hf[0]), "-t", "q8_0", "-o", str(out), "--backend", "cpu", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert "100.0%" in proc.stderr and "ETA" in proc.stderr  # progress went to stderr
    assert f"wrote {out}" in proc.stdout
    reader = GGUFReader(out)
    assert int(reader.get_field("general.file_type").contents()) == 7
    assert {t.tensor_type.name for t in reader.tensors} == {"Q8_0", "F32"}
    assert list(tmp_path.iterdir()) == [out]


def test_bad_inputs_exit_2_with_one_line(tiny_hf, tmp_path):
    cases = [
        ((str(tiny_hf[0]), "-t", "Q9_K", "-o", str(tmp_path / "a.gguf")), "unknown type Q9_K"),
        ((str(tmp_path / "nowhere"), "-t", "F16", "-o", str(tmp_path / "b.gguf")), "does not exist"),
        ((str(tiny_hf[0]), "-t", "F16", "-o", str(tmp_path / "no" / "c.gguf")), "does not exist"),
        ((str(tiny_hf[0]), "-t", "F16", "-o", str(tmp_path / "d.gguf"), "--threads", "0"),
         "--threads must be at least 1"),
    ]
    for args, message in cases:
        proc = _cli(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
    assert list(tmp_path.iterdir()) == []


def test_outputs_that_cannot_be_written_exit_2_with_one_line(tiny_hf, tmp_path):
    folder = tmp_path / "existing-folder"
    (folder / "inside").mkdir(parents=True)
    cases = [
        ((str(folder), "--overwrite"), "existing-folder is a folder; give the name of the file to write in it"),
        ((str(folder),), "existing-folder is a folder"),
        ((str(tmp_path / ("x" * 300 + ".gguf")),), "the output file name is too long (305 characters"),
        ((str(tmp_path / ("x" * 251 + ".gguf")),), "too long"),   # fits, but NAME.part would not
    ]
    for (out, *extra), message in cases:
        proc = _cli(str(tiny_hf[0]), "-t", "F16", "-o", out, *extra)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (out, proc.stderr)
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["existing-folder", "inside"]   # untouched
