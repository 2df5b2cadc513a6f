"""A fast, header-only GGUF reader for the planner: metadata + tensor table, no tensor data.

Why not gguf-py's GGUFReader here: it maps every array (a 262k-entry vocabulary becomes 262k numpy
views, seconds of work) and needs the whole file, while the planner must answer in milliseconds and
the hub feeds it only the first megabytes of a remote file. Large arrays are skipped and summarised
as `ArrayInfo`; values and type ids follow gguf-py's `GGUFValueType`.
"""
from __future__ import annotations

import mmap
import struct
from itertools import repeat
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"
KEEP_ARRAY_MAX = 4096  # arrays up to this length are returned as lists (per-layer hparams, patterns)

# GGUFValueType ids -> struct codes of the scalar types.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class HeaderIncomplete(Exception):
    """The bytes end before the header does; `have` bytes were given. Fetch more and retry."""

    def __init__(self, have: int):
        super().__init__(f"GGUF header continues past the first {have} bytes")
        self.have = have


class HeaderError(Exception):
    """Not a GGUF header we can read (bad magic, unknown value type, absurd counts)."""


@dataclass(frozen=True)
class ArrayInfo:
    """A long array (vocabulary, merges) we skipped: its element type id and length."""
    type: int
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]   # GGUF order: shape[0] is the row length (ne0)
    ggml_type: int
    offset: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict
    tensors: tuple[TensorInfo, ...]
    header_bytes: int        # where tensor data begins (after alignment)


class _Cursor:
    def __init__(self, buf):
        self.buf, self.pos, self.end = buf, 0, len(buf)

    def need(self, n: int) -> None:
        if self.pos + n > self.end:
            raise HeaderIncomplete(self.end)

    def u32(self) -> int:
        self.need(4)
        v = _U32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return v

    def u64(self) -> int:
        self.need(8)
        v = _U64.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return v

    def string(self) -> str:
        n = self.u64()
        if n > 1 << 24:
            raise HeaderError(f"implausible string length {n} at byte {self.pos - 8}")
        self.need(n)
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    def scalar(self, vtype: int):
        code = _SCALARS.get(vtype)
        if code is None:
            raise HeaderError(f"unknown GGUF value type {vtype}")
        size = struct.calcsize(code)
        self.need(size)
        v = struct.unpack_from("<" + code, self.buf, self.pos)[0]
        self.pos += size
        return v

    def value(self, vtype: int):
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.u32(), self.u64()
            if count <= KEEP_ARRAY_MAX:
                return [self.value(etype) for _ in range(count)]
            self.skip_array(etype, count)
            return ArrayInfo(etype, count)
        return self.scalar(vtype)

    def skip_array(self, etype: int, count: int) -> None:
        if etype in _SCALARS:
            n = struct.calcsize(_SCALARS[etype]) * count
            self.need(n)
            self.pos += n
            return
        if etype != _STRING:
            raise HeaderError(f"cannot skip an array of GGUF type {etype}")
        # Strings are length-prefixed, so walking them is the only way past (the vocabulary).
        # The tightest loop we can write: unpack_from itself reports running off the end.
        buf, pos, unpack = self.buf, self.pos, _U64.unpack_from
        try:
            for _ in repeat(None, count):
                pos += 8 + unpack(buf, pos)[0]
        except struct.error:
            raise HeaderIncomplete(self.end) from None
        if pos > self.end:
            raise HeaderIncomplete(self.end)
        self.pos = pos


def parse_header(buf) -> GGUFHeader:
    """Parse a GGUF header from bytes (a whole file or any prefix of it).

    Raises HeaderIncomplete when `buf` stops inside the header, HeaderError when it is not GGUF.
    """
    cur = _Cursor(buf)
    cur.need(4)
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise HeaderError("not a GGUF file (bad magic)")
    cur.pos = 4
    version = cur.u32()
    if version not in (2, 3):
        raise HeaderError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = cur.u64(), cur.u64()
    if n_tensors > 1 << 20 or n_kv > 1 << 20:
        raise HeaderError("implausible tensor or key count (corrupt header)")
    metadata: dict = {}
    for _ in range(n_kv):
        key = cur.string()
        metadata[key] = cur.value(cur.u32())
    tensors = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.u32()
        if n_dims > 8:
            raise HeaderError(f"tensor {name} has {n_dims} dimensions (corrupt header)")
        shape = tuple(cur.u64() for _ in range(n_dims))
        tensors.append(TensorInfo(name, shape, cur.u32(), cur.u64()))
    align = int(metadata.get("general.alignment", 32) or 32)
    data_start = (cur.pos + align - 1) // align * align
    return GGUFHeader(version, metadata, tuple(tensors), data_start)


def read_header(path: str | Path) -> GGUFHeader:
    """Parse the header of a local GGUF file through a read-only memory map (no copy)."""
    path = Path(path)
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            raise HeaderError(f"{path.name} is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            try:
                return parse_header(mm)
            except HeaderIncomplete:
                raise HeaderError(f"{path.name} is truncated inside its GGUF header") from None
