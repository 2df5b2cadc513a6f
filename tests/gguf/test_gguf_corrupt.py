"""Bad input through the validator: each case is a GGUFError with one line naming the file,
and no file handle or memory map is left open afterwards."""
from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from gguf_testfiles import open_handles_to, write_tiny_gguf

from quantdesk.core.gguf import GGUFError, inspect_gguf


def _layout(path: Path) -> dict:
    """Offsets of the file's sections, measured with plain gguf-py."""
    from gguf import GGUFReader
    reader = GGUFReader(path)
    kv = [f for name, f in reader.fields.items() if not name.startswith("GGUF.")]
    out = {
        "kv_start": kv[0].offset,
        "kv_middle": kv[len(kv) // 2].offset + 3,
        "tensor_table": reader.tensors[0].field.offset,
        "tensor_table_middle": reader.tensors[len(reader.tensors) // 2].field.offset + 5,
        "data_start": reader.data_offset,
        "first_type_offset": reader.tensors[0].field.offset + sum(
            int(p.nbytes) for p in reader.tensors[0].field.parts[:4]),
        "size": os.path.getsize(path),
    }
    del reader, kv
    return out


def _expect(path: Path, *fragments: str) -> str:
    with pytest.raises(GGUFError) as caught:
        inspect_gguf(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(path.name), message
    for fragment in fragments:
        assert fragment in message, message
    del caught
    if path.is_file():
        assert open_handles_to(path) == []
    return message


def _variant(beside: Path, name: str, data: bytes) -> Path:
    """A file called `name` next to `beside`, holding `data`."""
    path = beside.with_name(name)
    path.write_bytes(data)
    return path


def test_not_gguf_files(tmp_path):
    _expect(_variant(tmp_path / "any", "notes.txt", b"just some text\n" * 10), "is not a GGUF file")
    _expect(_variant(tmp_path / "any", "picture.gguf", b"\x89PNG\r\n\x1a\n" + bytes(100)), "PNG image")
    _expect(_variant(tmp_path / "any", "empty.gguf", b""), "is empty")
    _expect(_variant(tmp_path / "any", "model.safetensors", struct.pack("<Q", 20) + b'{"a": 1}' + bytes(40)),
            "safetensors")


def test_truncated_at_every_section(tiny_gguf):
    data = tiny_gguf.read_bytes()
    at = _layout(tiny_gguf)
    cases = {
        "header": (10, "ends inside the header"),
        "kv": (at["kv_middle"], "truncated"),
        "table": (at["tensor_table_middle"], "truncated"),
        "data": (at["data_start"] + (at["size"] - at["data_start"]) // 2, "missing, starting in tensor"),
        "last_byte": (at["size"] - 1, "1 byte missing"),
    }
    for label, (cut, fragment) in cases.items():
        _expect(_variant(tiny_gguf, f"cut-{label}.gguf", data[:cut]), "truncated", fragment)


def test_bad_header_values(tiny_gguf):
    data = bytearray(tiny_gguf.read_bytes())
    at = _layout(tiny_gguf)

    def patched(offset: int, raw: bytes) -> bytes:
        out = bytearray(data)
        out[offset:offset + len(raw)] = raw
        return bytes(out)

    _expect(_variant(tiny_gguf, "v1.gguf", patched(4, struct.pack("<I", 1))), "unsupported GGUF version 1")
    _expect(_variant(tiny_gguf, "v9.gguf", patched(4, struct.pack("<I", 9))), "unsupported GGUF version 9")
    _expect(_variant(tiny_gguf, "big.gguf", patched(4, struct.pack(">I", 3))), "big-endian")
    _expect(_variant(tiny_gguf, "tensors.gguf", patched(8, struct.pack("<Q", 2**60))),
            f"{2**60:,} tensors")
    _expect(_variant(tiny_gguf, "kvs.gguf", patched(16, struct.pack("<Q", 10**12))),
            f"{10**12:,} metadata entries")
    _expect(_variant(tiny_gguf, "type.gguf", patched(at["first_type_offset"], struct.pack("<I", 99))),
            "tensor 'token_embd.weight' of unknown type 99")


def test_wrong_kind_of_gguf(tmp_path):
    adapter = tmp_path / "adapter.gguf"
    write_tiny_gguf(adapter, general_type="adapter")
    _expect(adapter, "LoRA adapter")
    vocab = tmp_path / "vocab.gguf"
    write_tiny_gguf(vocab, tensors=False)
    _expect(vocab, "no weights")


def test_paths_that_are_not_files(tmp_path):
    _expect(tmp_path / "nowhere.gguf", "does not exist")
    folder = tmp_path / "folder.gguf"
    folder.mkdir()
    _expect(folder, "is a folder")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.gguf"
        os.mkfifo(fifo)
        _expect(fifo, "is not a regular file")


def test_permission_denied(tiny_gguf):
    tiny_gguf.chmod(0)
    if os.geteuid() != 0:
        _expect(tiny_gguf, "permission denied")
        return
    # root reads everything: re-run as root without the capabilities that bypass file modes.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is not available to drop CAP_DAC_OVERRIDE")
    caps = "-dac_override,-dac_read_search"
    code = ("import sys; from quantdesk.core.gguf import inspect_gguf, GGUFError\n"
            "try: inspect_gguf(sys.argv[1])\nexcept GGUFError as e: print(e)")
    out = subprocess.run([setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable,
                          "-c", code, str(tiny_gguf)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == f"{tiny_gguf.name} cannot be read (permission denied)", out


def test_random_damage_never_escapes_as_another_exception(tiny_gguf):
    """Cut and byte-flip the header region at many places: always a ModelInfo or a GGUFError."""
    data = tiny_gguf.read_bytes()
    header_end = _layout(tiny_gguf)["data_start"]
    target = tiny_gguf.with_name("damaged.gguf")
    rng = random.Random(1234)
    outcomes = set()
    for i in range(400):
        damaged = bytearray(data)
        if i % 4 == 0:
            damaged = damaged[:rng.randrange(1, len(data))]
        else:
            for _ in range(rng.randint(1, 3)):
                damaged[rng.randrange(8, header_end)] = rng.randrange(256)
        target.write_bytes(bytes(damaged))
        try:
            inspect_gguf(target)
            outcomes.add("ok")
        except GGUFError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(target.name)
            outcomes.add(str(exc).split()[2].rstrip(":"))   # "truncated", "corrupt", ...
    assert open_handles_to(target) == []
    assert {"truncated", "corrupt"} <= outcomes


def test_valid_file_leaves_nothing_open(tiny_gguf):
    info = inspect_gguf(tiny_gguf)
    assert info.tensor_count == 8 and open_handles_to(tiny_gguf) == []
    os.replace(tiny_gguf, tiny_gguf.with_name("renamed.gguf"))  # what Windows would refuse if locked
