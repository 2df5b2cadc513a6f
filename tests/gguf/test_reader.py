"""The one GGUF header reader: prefixes, the growing fetch, limits, and what llama.cpp refuses."""
from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from gguf_testfiles import write_tiny_gguf

from quantdesk.core.gguf import (ArrayInfo, GGUFError, HeaderError, HeaderIncomplete, Limits, parse_header,
                                 read_header, read_prefix)
from quantdesk.core.gguf import header as h


def _string(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(raw)) + raw


def _gguf(kvs: list[bytes], tensors: list[bytes] = ()) -> bytes:
    """Header bytes from pre-encoded metadata entries and tensor-table entries."""
    return b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)


def _kv(key: str, vtype: int, payload: bytes) -> bytes:
    return _string(key) + struct.pack("<I", vtype) + payload


def test_type_ids_are_gguf_pys():
    from gguf import GGML_QUANT_SIZES, GGUFValueType
    assert [h.UINT8, h.INT8, h.UINT16, h.INT16, h.UINT32, h.INT32, h.FLOAT32, h.BOOL, h.STRING, h.ARRAY,
            h.UINT64, h.INT64, h.FLOAT64] == [int(GGUFValueType[n]) for n in (
        "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY",
        "UINT64", "INT64", "FLOAT64")]
    assert h.ggml_types() == {int(t): (t.name, *sizes) for t, sizes in GGML_QUANT_SIZES.items()}


def test_importing_the_package_leaves_gguf_py_and_numpy_unloaded():
    code = "import sys, quantdesk.core.gguf; print(sorted({'gguf', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_same_facts_as_gguf_py(tiny_gguf):
    from gguf import GGUFReader
    header = read_header(tiny_gguf)
    reader = GGUFReader(tiny_gguf)
    assert header.data_offset == reader.data_offset and header.version == 3
    assert [(t.name, t.type_name, t.n_elements, t.n_bytes, header.data_offset + t.offset, list(t.shape))
            for t in header.tensors] == [
        (t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes), int(t.data_offset),
         [int(d) for d in t.shape]) for t in reader.tensors]
    expected = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert header.metadata.keys() == expected.keys()
    for key, value in expected.items():
        assert header.metadata[key] == pytest.approx(value) if key.endswith("scores") else \
            header.metadata[key] == value, key
    del reader


def test_every_prefix_is_incomplete_until_the_header_ends(tiny_gguf):
    data = tiny_gguf.read_bytes()
    whole = read_header(tiny_gguf)
    cut = 0
    while True:
        try:
            header = parse_header(data[:cut])
            break
        except HeaderIncomplete as more:
            assert more.have == cut and more.need > cut and more.more == more.need - cut
            cut = more.need   # the least it asked for is always enough to move on
    assert cut <= whole.data_offset
    assert header == whole


def test_known_file_size_turns_a_short_buffer_into_truncated(tiny_gguf):
    data = tiny_gguf.read_bytes()
    with pytest.raises(HeaderError, match="^is truncated: it ends inside metadata entry"):
        parse_header(data[:200], file_size=200)
    with pytest.raises(HeaderIncomplete):
        parse_header(data[:200], file_size=len(data))


def test_read_prefix_grows_its_window(tiny_gguf):
    data = tiny_gguf.read_bytes()
    asked = []

    def fetch(start, end):
        asked.append((start, end))
        return data[start:end], len(data)

    got = read_prefix(fetch, first_bytes=64)
    assert got.header == read_header(tiny_gguf) and got.file_size == len(data)
    assert asked[0] == (0, 64) and all(b[0] == a[1] for a, b in zip(asked, asked[1:]))
    assert all(b[1] - b[0] >= 3 * a[1] for a, b in zip(asked, asked[1:-1]))   # at least 4x per round
    assert got.bytes_read == asked[-1][1] < len(data)

    cut = got.header.data_offset - 40   # inside the last tensor-table entry (padding is < 32)

    def short(start, end):   # a file that ends inside its tensor table, size not announced
        return data[:cut][start:end], None
    with pytest.raises(HeaderError, match="^is truncated: it ends inside the tensor table"):
        read_prefix(short, first_bytes=64)


def test_limits_are_one_object(tiny_gguf):
    data = tiny_gguf.read_bytes()
    with pytest.raises(HeaderError, match=r"claims 12 metadata entries, more than the 3 we read"):
        parse_header(data, limits=Limits(max_metadata=3))
    with pytest.raises(HeaderError, match=r"claims 8 tensors, more than the 4 we read"):
        parse_header(data, limits=Limits(max_tensors=4))
    short = parse_header(data, limits=Limits(keep_array_items=10))
    assert short.metadata["tokenizer.ggml.tokens"] == ArrayInfo(h.STRING, 64)
    assert short.metadata["tokenizer.ggml.scores"] == ArrayInfo(h.FLOAT32, 64)
    assert parse_header(data).metadata["tokenizer.ggml.tokens"][:2] == ["tok0", "tok1"]
    with pytest.raises(HeaderError, match="header larger than 0 MiB"):
        parse_header(data, limits=Limits(max_header_bytes=1000))


def test_counts_the_file_cannot_hold_are_refused_at_once():
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 10**12)
    with pytest.raises(HeaderError, match=r"claims 1,000,000,000,000 metadata entries, but only 0 bytes"):
        parse_header(head, file_size=len(head))
    with pytest.raises(HeaderError, match=r"more than the 1,048,576 we read"):
        parse_header(head)   # size unknown (a remote prefix): our limit still holds


@pytest.mark.parametrize("kvs, tensors, message", [
    ([_kv("a", h.UINT8, b"\1"), _kv("a", h.UINT8, b"\2")], [], "metadata key 'a' appears twice"),
    ([_kv("a", h.ARRAY, struct.pack("<IQ", h.ARRAY, 0))], [], "array of arrays"),
    ([_kv("a", 13, b"")], [], "unknown value type 13"),
    ([_kv("a", h.ARRAY, struct.pack("<IQ", 99, 0))], [], "unknown array type 99"),
    ([_string(b"\xff") + struct.pack("<I", h.UINT8) + b"\0"], [], "not valid UTF-8"),
    ([_kv("general.alignment", h.UINT32, struct.pack("<I", 24))], [], "power of two"),
    ([_kv("general.alignment", h.UINT64, struct.pack("<Q", 32))], [], "power of two"),
    ([], [_string("w") + struct.pack("<I", 5) + struct.pack("<5Q", 1, 1, 1, 1, 1) + struct.pack("<IQ", 0, 0)],
     "more than 4 dimensions"),
    ([], [_string("w" * 64) + struct.pack("<IQIQ", 1, 32, 0, 0)], "is too long"),
    ([], [_string("w") + struct.pack("<IQIQ", 1, 32, 0, 0)] * 2, "tensor 'w' appears twice"),
    ([], [_string("w") + struct.pack("<IQIQ", 1, 32, 99, 0)], "of unknown type 99"),
    ([], [_string("w") + struct.pack("<IQIQ", 1, 33, 8, 0)], "not a multiple of the Q8_0 block size 32"),
    ([], [_string("w") + struct.pack("<IQQIQ", 2, 2**40, 2**40, 0, 0)], "elements"),
])
def test_what_llama_cpp_refuses_while_parsing(kvs, tensors, message):
    with pytest.raises(HeaderError, match=message):
        parse_header(_gguf(kvs, tensors))


def test_local_file_errors_name_the_file(tmp_path, tiny_gguf):
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(GGUFError, match=r"^empty\.gguf is empty"):
        read_header(empty)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:300])
    with pytest.raises(GGUFError, match=r"^cut\.gguf is truncated: it ends inside"):
        read_header(cut)
    split = write_tiny_gguf(tmp_path / "split.gguf", split_max_tensors=3)
    assert [len(read_header(p).tensors) for p in split] == [3, 3, 2]
