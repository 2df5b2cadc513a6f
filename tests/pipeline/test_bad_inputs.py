"""Every bad input gets one clear line and leaves no .gguf or .gguf.part behind; nothing the user
had is overwritten."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quantdesk.core.convert import ConvertError
from quantdesk.core.quantize import CancelToken, Cancelled, quantize_model
from quantdesk.core.quantize import writer

from .tiny_llama import build_tiny_llama, write_safetensors


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".gguf" in p.name)


@pytest.fixture
def hf(tiny_hf, tmp_path):
    """A private copy of the tiny HF folder that a test may damage."""
    folder = tmp_path / "hf"
    shutil.copytree(tiny_hf[0], folder)
    return folder


def _refused(src, out: Path, match: str, qtype="F16", **kw):
    with pytest.raises(ConvertError, match=match) as info:
        quantize_model(src, out, qtype, **kw)
    assert "\n" not in str(info.value)
    assert _leftovers(out.parent) == []
    return info.value


def test_missing_shard(tmp_path):
    folder = tmp_path / "hf"
    build_tiny_llama(folder, n_layer=2, shards=2)
    (folder / "model-00002-of-00002.safetensors").unlink()
    out = tmp_path / "out"
    out.mkdir()
    _refused(folder, out / "m.gguf", "missing shard model-00002-of-00002.safetensors")


def test_truncated_safetensors(hf, tmp_path):
    st = hf / "model.safetensors"
    with open(st, "r+b") as f:
        f.truncate(st.stat().st_size - 1000)
    _refused(hf, tmp_path / "m.gguf", "model.safetensors is truncated")


def test_no_tokenizer(hf, tmp_path):
    (hf / "tokenizer.json").unlink()
    _refused(hf, tmp_path / "m.gguf", "no tokenizer")


def test_nan_weights(hf, tmp_path):
    rng = np.random.default_rng(0)
    w = {"model.embed_tokens.weight": rng.standard_normal((384, 256)).astype(np.float32)}
    w["model.embed_tokens.weight"][7, 3] = np.nan
    # rewrite the checkpoint as F32 with one NaN in the embeddings, the rest unchanged
    from quantdesk.core.convert.safetensors import SafetensorsCheckpoint
    ck = SafetensorsCheckpoint(hf)
    full = {n: ck.load(n) for n in ck.names()}
    ck.close()
    full.update(w)
    write_safetensors(hf / "model.safetensors", full, "F32")
    err = _refused(hf, tmp_path / "m.gguf", "NaN", qtype="Q8_0")
    assert "token_embd.weight" in str(err)


def test_disk_full_leaves_nothing(hf, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = writer.write_bytes

    def full_disk(f, data):
        calls["n"] += 1
        if calls["n"] > 5:  # some tensors are on disk already when the disk fills up
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    monkeypatch.setattr(writer, "write_bytes", full_disk)
    _refused(hf, tmp_path / "m.gguf", "not enough disk space")
    assert calls["n"] > 5


def test_disk_too_small_is_refused_before_writing(hf, tmp_path, monkeypatch):
    import shutil as sh
    monkeypatch.setattr(sh, "disk_usage", lambda p: sh._ntuple_diskusage(10**12, 10**12 - 4096, 4096))
    _refused(hf, tmp_path / "m.gguf", "not enough disk space: m.gguf needs about")


def test_cancel_leaves_nothing(hf, tmp_path):
    token = CancelToken()
    seen = []

    def on_progress(p):
        seen.append(p)
        if p.index == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        quantize_model(hf, tmp_path / "m.gguf", "F16", progress=on_progress, cancel=token)
    assert _leftovers(tmp_path) == []
    assert seen[0].total_bytes > 0 and all(a.done_bytes <= b.done_bytes for a, b in zip(seen, seen[1:]))


def test_existing_output_is_not_overwritten(hf, tmp_path):
    out = tmp_path / "mine.gguf"
    out.write_bytes(b"the user's own file")
    with pytest.raises(ConvertError, match="already exists"):
        quantize_model(hf, out, "F16")
    assert out.read_bytes() == b"the user's own file"
    assert _leftovers(tmp_path) == ["mine.gguf"]
    quantize_model(hf, out, "F16", overwrite=True)  # only when asked
    assert out.read_bytes()[:4] == b"GGUF"


def test_quantized_gguf_refused_unless_allowed(starter_model, tmp_path):
    err = _refused(starter_model, tmp_path / "re.gguf", "already quantized", qtype="Q8_0")
    assert "Q4_1" in str(err) or "Q8_0" in str(err) or "Q6_K" in str(err)


def test_unknown_type(hf, tmp_path):
    _refused(hf, tmp_path / "m.gguf", "unknown output type 'Q7_K'", qtype="Q7_K")


def test_read_only_output_dir(tiny_f32, tmp_path):
    """A real permission failure: the CLI against a 0555 folder. Root ignores permission bits, so
    as root the CLI runs in a fresh user namespace (`unshare -U`), where it no longer can."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare: permission bits cannot be enforced")
        prefix = ["unshare", "-U"]
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        proc = subprocess.run(prefix + [sys.executable, "-m", "quantdesk.core.cli", "quantize",
                                        str(tiny_f32["a"]), "-t", "F16", "-o", str(ro / "m.gguf")],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "permission denied" in lines[0], proc.stderr
        assert os.listdir(ro) == []
    finally:
        os.chmod(ro, 0o755)
