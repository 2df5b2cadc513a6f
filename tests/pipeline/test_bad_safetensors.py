"""Damaged or hostile safetensors sources: each ends in ConvertError (one line; exit 2 from the
CLI), nothing is written (no .gguf, no .part) and nothing the user had changes.

Before these checks: a deeply nested header raised RecursionError, shape [1e20] OverflowError, a
negative shape struct.error; negative or overlapping offsets were accepted and read header bytes
(or another tensor's) as weights; a missing projection or a wrong embedding shape wrote a GGUF
that llama.cpp refuses; a file truncated while being read killed the process with SIGBUS.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from quantdesk.core.cli import main
from quantdesk.core.convert import ConvertError
from quantdesk.core.convert.safetensors import SafetensorsCheckpoint
from quantdesk.core.quantize import quantize_model

from .tiny_llama import write_safetensors

EMBED = "model.embed_tokens.weight"
K1, V1 = "model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.v_proj.weight"


@pytest.fixture
def hf(tiny_hf, tmp_path):
    folder = tmp_path / "hf"
    shutil.copytree(tiny_hf[0], folder)
    return folder


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _refused(hf: Path, tmp_path: Path, match: str) -> str:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.gguf").write_bytes(b"the user's own file")
    before = _fingerprint(hf)
    with pytest.raises(ConvertError, match=match) as info:
        quantize_model(hf, out / "m.gguf", "F16")
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert sorted(p.name for p in out.iterdir()) == ["mine.gguf"]           # no m.gguf, no .part
    assert (out / "mine.gguf").read_bytes() == b"the user's own file"
    assert _fingerprint(hf) == before                                       # the source untouched
    return message


def _rewrite_header(st: Path, change) -> None:
    """Apply `change(header)` to the file's JSON header (it may return raw header bytes instead)."""
    raw = st.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    new = change(header)
    body = new if isinstance(new, bytes) else json.dumps(header).encode()
    body += b" " * (-len(body) % 8)
    st.write_bytes(struct.pack("<Q", len(body)) + body + data)


def _deep(header):
    depth = 100_000
    return b'{"__metadata__": ' + b"[" * depth + b"]" * depth + b", " + json.dumps(header)[1:].encode()


def _shape(value):
    def change(header):
        header[EMBED]["shape"][0] = value
    return change


def _offsets(fn):
    def change(header):
        fn(header)
    return change


def _negative(header):
    b, e = header[EMBED]["data_offsets"]
    header[EMBED]["data_offsets"] = [b - 64, e - 64]   # the first 64 "weights" would be header bytes


def _overlap(header):
    header[V1]["data_offsets"] = list(header[K1]["data_offsets"])   # v reads k's bytes


@pytest.mark.parametrize("change,match", [
    (_deep, "nests too deeply"),
    (_shape(1e20), r"shape \[1e\+20, 256\] is not a list of integers"),
    (_shape(10**20), r"shape \[100000000000000000000, 256\] has a size out of range"),
    (_shape(-384), r"shape \[-384, 256\] has a size out of range"),
    (_shape(385), r"has 196608 bytes, expected 197120 for BF16 \[385, 256\]"),
    (_negative, r"data_offsets \[-64, .*\] are not a byte range"),
    (_overlap, f"tensor {V1} overlaps the tensor before it"),
], ids=["deep-nesting", "shape-1e20", "shape-10^20", "negative-shape", "shape-vs-bytes", "negative-offsets", "overlap"])
def test_a_hostile_header_is_refused(hf, tmp_path, change, match):
    _rewrite_header(hf / "model.safetensors", change)
    _refused(hf, tmp_path, match)


def test_the_cli_exits_2_with_one_line(hf, tmp_path, capsys):
    _rewrite_header(hf / "model.safetensors", _overlap)
    rc = main(["quantize", str(hf), "-t", "Q8_0", "-o", str(tmp_path / "m.gguf")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("quantdesk: model.safetensors: tensor")
    assert not list(tmp_path.glob("m.gguf*"))


def _rewrite_tensors(hf: Path, change) -> None:
    ck = SafetensorsCheckpoint(hf)
    tensors = {n: ck.load(n) for n in ck.names()}
    ck.close()
    change(tensors)
    write_safetensors(hf / "model.safetensors", tensors, "F32")


def test_a_missing_projection_is_refused_before_writing(hf, tmp_path):
    _rewrite_tensors(hf, lambda t: t.pop(K1))
    _refused(hf, tmp_path, "the checkpoint has no blk.1.attn_k.weight, which llama.cpp's llama model needs")


@pytest.mark.parametrize("rows,cols", [(383, 256), (384, 255)])
def test_a_wrong_embedding_shape_is_refused_before_writing(hf, tmp_path, rows, cols):
    _rewrite_tensors(hf, lambda t: t.update({EMBED: t[EMBED][:rows, :cols].copy()}))
    _refused(hf, tmp_path, rf"tensor token_embd.weight has shape \[{rows}, {cols}\] but the config makes it \[384, 256\]")


def test_a_tensor_llama_cpp_does_not_read_is_refused(hf, tmp_path):
    _rewrite_tensors(hf, lambda t: t.update({"model.layers.1.self_attn.q_proj.bias": t[EMBED][0, :8].copy()}))
    _refused(hf, tmp_path, r"tensor blk.1.attn_q.bias has shape \[8\] but the config makes it \[256\]")


_TRUNCATE_WHILE_READING = r"""
import sys
from quantdesk.core.cli import main
from quantdesk.core.convert import safetensors
read = safetensors.SafetensorsCheckpoint.read_rows
calls = []
def read_then_shrink(self, name, r0, r1):
    calls.append(name)
    if len(calls) == 3:   # the file is open and has been read from: now it shrinks to half
        path = self.refs[name].path
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)
    return read(self, name, r0, r1)
safetensors.SafetensorsCheckpoint.read_rows = read_then_shrink
sys.exit(main(sys.argv[1:]))
"""


def test_a_source_truncated_while_being_read_is_an_error_not_sigbus(hf, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", _TRUNCATE_WHILE_READING, "quantize", str(hf), "-t", "Q8_0",
                           "-o", str(out / "m.gguf")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])   # a signal would be negative
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("quantdesk: model.safetensors is truncated: tensor ") and "cut short" in last
    assert list(out.iterdir()) == []          # the .part is gone
