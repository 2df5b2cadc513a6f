"""NAME.part files of ours: a writer killed with SIGKILL leaves one; the next start removes it
(never one a live Quantdesk process is writing), and the library never lists one as a model."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from quantdesk.core.output_files import PartBusy, PartFile, clean_stale_parts


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path / "home"


def _killed_quantize(src, out, home) -> None:
    """`quantdesk quantize` in a child, SIGKILLed as soon as its .part is being written."""
    env = dict(os.environ, QUANTDESK_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "quantdesk.core.cli", "quantize", str(src), "-t", "Q8_0",
                             "-o", str(out), "--backend", "cpu"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out.with_name(out.name + ".part")
    deadline = time.monotonic() + 240
    try:
        while not (part.exists() and part.stat().st_size > 0):
            assert proc.poll() is None, "quantize ended before its .part appeared"
            assert time.monotonic() < deadline, "no .part within 240 s"
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def test_a_killed_quantize_leaves_a_part_the_next_start_removes(tiny_hf, tmp_path, home):
    from quantdesk.core import paths
    from quantdesk.core.library import Library
    out = paths.models_dir() / "tiny-Q8_0.gguf"
    _killed_quantize(tiny_hf[0], out, home)
    part = out.with_name(out.name + ".part")
    assert part.exists() and not out.exists()                 # what kill -9 leaves behind
    records = list((home / "writing").glob("*.lock"))
    assert len(records) == 1 and str(part) in records[0].read_text()
    # other people's partial files next to it are not ours: kept
    theirs = paths.models_dir() / "other.gguf.part"
    theirs.write_bytes(b"GGUF")
    library = Library(home)
    assert [e for e in library.entries() if e.path.name.endswith(".part")] == []
    assert not part.exists() and list((home / "writing").iterdir()) == []   # cleaned at the start
    assert theirs.exists()


def test_a_live_writers_part_is_never_removed(tmp_path, home):
    out = tmp_path / "m.gguf"
    with PartFile(out) as part:
        part.path.write_bytes(b"GGUF in progress")
        # another process starting now (a second window, a CLI run) must leave it alone
        code = "from quantdesk.core.output_files import clean_stale_parts; print(clean_stale_parts())"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, QUANTDESK_HOME=str(home)))
        assert other.stdout.strip() == "[]", other.stderr
        assert clean_stale_parts() == [] and part.path.exists()
        with pytest.raises(PartBusy, match="another Quantdesk process is writing m.gguf.part"):
            PartFile(out).__enter__()
    assert not part.path.exists() and not out.exists()   # not committed: removed on the way out


def test_commit_renames_and_forgets(tmp_path, home):
    out = tmp_path / "m.gguf"
    with PartFile(out) as part:
        part.path.write_bytes(b"done")
        part.commit()
    assert out.read_bytes() == b"done" and not part.path.exists()
    assert list((home / "writing").iterdir()) == []


def test_the_library_never_adds_a_part(tmp_path, home):
    from quantdesk.core.gguf import GGUFError
    from quantdesk.core.library import Library
    part = tmp_path / "m.gguf.part"
    part.write_bytes(b"GGUF")
    with pytest.raises(GGUFError, match="m.gguf.part is an unfinished download or quantization"):
        Library(home).add(part)
