"""The doors to the vision projector: `quantdesk quantize SRC --mmproj`, the quantize job that
writes the projector with the model (the Quantize page's box), the page's source summary."""
from __future__ import annotations

import subprocess
import sys

import pytest
from gguf import GGUFReader

from quantdesk.core.cancel import CancelToken
from quantdesk.core.convert import ConvertError
from quantdesk.core.quantize import Cancelled
from quantdesk.core.runtime.mmproj import projector_output
from quantdesk.core.runtime.quantize import QuantizeRequest, quantize_job
from tests.mmproj.tiny_gemma3 import build_tiny_gemma3
from tests.pipeline.tiny_llama import build_tiny_other


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_gemma3(tmp_path_factory.mktemp("doors") / "tiny-gemma3")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "quantize", *args],
                          capture_output=True, text=True, timeout=300)


def _kind(path) -> tuple[str, str, int]:
    r = GGUFReader(path)
    return (r.get_field("general.architecture").contents(), r.get_field("general.type").contents(),
            int(r.get_field("general.file_type").contents()))


@pytest.mark.slow
def test_cli_writes_the_projector_f16_by_default(tiny, tmp_path):
    out = tmp_path / "mmproj-tiny-f16.gguf"
    proc = _cli(str(tiny.folder), "--mmproj", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out} (F16" in proc.stdout and "100.0%" in proc.stderr
    assert _kind(out) == ("clip", "mmproj", 1)
    out8 = tmp_path / "mmproj-tiny-q8_0.gguf"
    proc = _cli(str(tiny.folder), "--mmproj", "-t", "q8_0", "-o", str(out8))
    assert proc.returncode == 0, proc.stderr
    assert _kind(out8) == ("clip", "mmproj", 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name, out8.name]


def test_cli_refusals_are_one_line(tiny, tmp_path):
    text_only = tmp_path / "text-only"
    build_tiny_other(text_only, "Gemma3ForCausalLM")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "taken.gguf").write_bytes(b"the user's file")
    out = str(out_dir / "m.gguf")
    cases = [
        ((str(text_only), "--mmproj", "-o", out), "this checkpoint has no vision tower"),
        ((str(tiny.folder), "--mmproj", "-t", "Q4_K_M", "-o", out),
         "an mmproj is written as F16, F32, BF16, Q8_0, not Q4_K_M"),
        ((str(tiny.folder), "--mmproj", "--imatrix", "x.dat", "-o", out),
         "--imatrix does not apply to --mmproj"),
        ((str(tmp_path / "nowhere"), "--mmproj", "-o", out), "does not exist"),
        ((str(tiny.folder), "--mmproj", "-o", str(out_dir / "taken.gguf")), "taken.gguf already exists"),
        ((str(tiny.folder), "-o", out), "give the output type with -t"),
    ]
    for args, message in cases:
        proc = _cli(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
    assert [p.name for p in out_dir.iterdir()] == ["taken.gguf"]
    assert (out_dir / "taken.gguf").read_bytes() == b"the user's file"


def test_projector_output_is_next_to_the_model_and_never_an_existing_file(tiny, tmp_path):
    model_out = tmp_path / "tiny-gemma3-Q8_0.gguf"
    first = projector_output(model_out, tiny.folder)
    assert first == tmp_path / "mmproj-tiny-gemma3-f16.gguf"
    first.write_bytes(b"earlier")
    assert projector_output(model_out, tiny.folder) == tmp_path / "mmproj-tiny-gemma3-f16-2.gguf"


@pytest.mark.slow
def test_quantize_job_writes_the_model_and_its_projector(tiny, tmp_path):
    out, mm = tmp_path / "tiny-Q8_0.gguf", tmp_path / "mmproj-tiny-f16.gguf"
    seen = []
    result = quantize_job(QuantizeRequest(str(tiny.folder), str(out), "Q8_0",
                                          mmproj_output=str(mm)))(seen.append, CancelToken())
    assert result.path == out and result.file_type == "Q8_0"
    assert _kind(out)[0] == "gemma3" and _kind(mm) == ("clip", "mmproj", 1)
    assert any(p.tensor.startswith("v.") for p in seen) and any(p.tensor.startswith("blk.")
                                                                 for p in seen)
    assert not any(t.name.startswith(("v.", "mm.")) for t in GGUFReader(out).tensors)


@pytest.mark.slow
def test_a_cancelled_model_takes_its_projector_along(tiny, tmp_path):
    out, mm = tmp_path / "tiny-Q8_0.gguf", tmp_path / "mmproj-tiny-f16.gguf"
    token = CancelToken()

    def report(p):   # cancel once the model (not the projector) is being written
        if p.tensor.startswith("blk."):
            token.cancel()
    with pytest.raises(Cancelled):
        quantize_job(QuantizeRequest(str(tiny.folder), str(out), "Q8_0",
                                     mmproj_output=str(mm)))(report, token)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_model_output_writes_no_projector(tiny, tmp_path):
    (tmp_path / "taken.gguf").write_bytes(b"mine")
    mm = tmp_path / "mmproj-tiny-f16.gguf"
    with pytest.raises(ConvertError, match="taken.gguf already exists"):
        quantize_job(QuantizeRequest(str(tiny.folder), str(tmp_path / "taken.gguf"), "F16",
                                     mmproj_output=str(mm)))(lambda p: None, CancelToken())
    assert [p.name for p in tmp_path.iterdir()] == ["taken.gguf"]


def test_source_summary_says_whether_a_projector_can_be_written(tiny, tmp_path):
    from quantdesk.core.hardware import detect
    from quantdesk.core.runtime.quantize import analyse_source
    s = analyse_source(tiny.folder, hardware=detect(), n_ctx=256)
    assert (s.vision, s.vision_refusal) == (True, None)
    text_only = tmp_path / "text-only"
    build_tiny_other(text_only, "Gemma3ForCausalLM")
    s = analyse_source(text_only, hardware=detect(), n_ctx=256)
    assert (s.vision, s.vision_refusal) == (False, None)
