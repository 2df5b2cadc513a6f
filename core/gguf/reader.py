"""The one GGUF header reader: bytes (a whole file or any prefix of it) -> GGUFHeader.

    parse_header(buf, file_size=None)   -> GGUFHeader, or HeaderIncomplete (fetch more) / HeaderError
    read_prefix(fetch, first_bytes=...) -> HeaderRead: grows a prefix through `fetch(start, end)`
                                           until the header parses (local file or HTTP range)
    read_header(path)                   -> GGUFHeader of a local file, or GGUFError naming it

Why not gguf-py's GGUFReader: it maps every array item to its own numpy view (a 262k-entry
vocabulary is seconds of work), needs the whole file, and keeps a memory map open behind every
value it returns. This reader walks the container with `struct`, keeps short arrays as lists,
skips long ones as `ArrayInfo`, copies every value out, and refuses, while reading, what
llama.cpp's gguf.cpp refuses while reading (duplicate keys, nested arrays, unknown types, bad
shapes, bad alignment), within the bounds in `limits.py`. What needs the whole file (tensor data
offsets and extent) is `validate.py`.
"""
from __future__ import annotations

import mmap
import os
import struct
from itertools import repeat
from pathlib import Path
from typing import Callable, NamedTuple

from quantdesk.core.units import human_bytes

from quantdesk.core.text import quoted, shown

from .errors import GGUFError, HeaderError, HeaderIncomplete
from .header import ARRAY, STRING, UINT32, ArrayInfo, GGUFHeader, TensorInfo, ggml_types
from .limits import LIMITS, Limits

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
FIRST_BYTES = 1 << 20   # most headers fit in 1 MiB; big vocabularies need a few MB more

_CODES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_SCALARS = {t: struct.Struct("<" + c) for t, c in _CODES.items()}
_SCALAR_UNPACK = {t: (st.unpack_from, st.size, lambda buf, at, n, c=c: struct.unpack_from(f"<{n}{c}", buf, at))
                  for (t, st), c in zip(_SCALARS.items(), _CODES.values())}
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_TYPE_OFFSET = struct.Struct("<IQ")                       # a tensor's type and data offset
_DIMS = [struct.Struct(f"<{n}Q") for n in range(LIMITS.max_dims + 1)]
_INT64_MAX = (1 << 63) - 1


class _Careful(Exception):
    """An entry the inline fast path leaves to the checked cursor."""


class _Cursor:
    """Position in the buffer, plus what is being read (for messages, formatted only on failure)."""
    __slots__ = ("buf", "pos", "end", "file_size", "limits", "section", "index", "last_key")

    def __init__(self, buf, file_size: int | None, limits: Limits):
        # Nothing past max_header_bytes is read, whatever the buffer (a memory-mapped file) holds.
        self.buf, self.pos, self.end = buf, 0, min(len(buf), limits.max_header_bytes)
        self.file_size, self.limits = file_size, limits
        self.section, self.index, self.last_key = "header", 0, ""

    def where(self) -> str:
        if self.section == "metadata":
            after = f" (after {quoted(self.last_key)})" if self.last_key else ""
            return f"metadata entry {self.index + 1}{after}"
        if self.section == "tensors":
            return f"the tensor table (entry {self.index + 1})"
        return "the header"

    def incomplete(self, need: int):
        if self.file_size is not None and need > self.file_size:
            raise HeaderError(f"is truncated: it ends inside {self.where()}")
        if need > self.limits.max_header_bytes:
            raise HeaderError(f"has a GGUF header larger than {self.limits.max_header_bytes >> 20} MiB "
                              f"({self.where()} reaches past it); not reading further")
        raise HeaderIncomplete(self.end, need, self.where())

    def corrupt(self, what: str):
        raise HeaderError(f"is corrupt: {what}")

    def need(self, n: int) -> None:
        if self.pos + n > self.end:
            self.incomplete(self.pos + n)

    def check_count(self, count: int, cap: int, min_bytes: int, what: str, where: str) -> None:
        """Refuse a count the rest of the file cannot hold, or beyond our limit."""
        if self.file_size is not None:
            room = self.file_size - self.pos
            if count * min_bytes > room:
                raise HeaderError(f"is truncated or corrupt: {where} claims {count:,} {what}, but only "
                                  f"{human_bytes(max(room, 0))} of the file follow")
        if count > cap:
            self.corrupt(f"{where} claims {count:,} {what}, more than the {cap:,} we read")

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

    def raw_string(self):
        n = self.u64()
        if n > self.limits.max_string_bytes:
            self.corrupt(f"{self.where()} holds a string of {n:,} bytes, more than the "
                         f"{self.limits.max_string_bytes:,} we read")
        self.need(n)
        raw = self.buf[self.pos:self.pos + n]
        self.pos += n
        return raw

    def string(self) -> str:
        # Values are decoded leniently: llama.cpp does not check their encoding either, and a
        # stray byte in a token or template is no reason to refuse the model.
        return str(self.raw_string(), "utf-8", "replace")

    def name(self) -> str:
        """A key or tensor name: must be text."""
        try:
            return str(self.raw_string(), "utf-8")
        except UnicodeDecodeError:
            self.corrupt(f"{self.where()} holds text that is not valid UTF-8")

    def value(self, vtype: int):
        scalar = _SCALARS.get(vtype)
        if scalar is not None:
            self.need(scalar.size)
            v = scalar.unpack_from(self.buf, self.pos)[0]
            self.pos += scalar.size
            return v
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            return self.array()
        self.corrupt(f"{self.where()} has unknown value type {vtype}")

    def array(self):
        etype, count = self.u32(), self.u64()
        if etype == ARRAY:
            self.corrupt(f"{self.where()} is an array of arrays, which llama.cpp does not read")
        scalar = _SCALARS.get(etype)
        if scalar is None and etype != STRING:
            self.corrupt(f"{self.where()} has unknown array type {etype}")
        limits = self.limits
        self.check_count(count, limits.max_array_items, scalar.size if scalar else 8, "array items",
                         self.where())
        keep = count <= limits.keep_array_items
        if scalar is not None:
            n = scalar.size * count
            self.need(n)
            value = (list(struct.unpack_from(f"<{count}{_CODES[etype]}", self.buf, self.pos)) if keep
                     else ArrayInfo(etype, count))
            self.pos += n
            return value
        if keep:
            return [self.string() for _ in repeat(None, count)]
        self.skip_strings(count)
        return ArrayInfo(STRING, count)

    def skip_strings(self, count: int) -> None:
        # Strings are length-prefixed, so walking them is the only way past (the vocabulary).
        # The tightest loop we can write: unpack_from itself reports running off the end.
        # Checked against the end once per chunk: the buffer may be a whole mapped file.
        buf, pos, end, unpack = self.buf, self.pos, self.end, _U64.unpack_from
        try:
            while count:
                chunk = min(count, 65536)
                for _ in repeat(None, chunk):
                    pos += 8 + unpack(buf, pos)[0]
                if pos > end:
                    break
                count -= chunk
        except (struct.error, OverflowError):   # OverflowError: a length of 2**63 moved pos
            self.incomplete(pos + 8)
        if pos > end:
            self.incomplete(pos)
        self.pos = pos


def parse_header(buf, *, file_size: int | None = None, limits: Limits = LIMITS) -> GGUFHeader:
    """Parse a GGUF header from bytes (a whole file or any prefix of it).

    `file_size`, when known, lets absurd counts be refused at once and turns "needs bytes past
    the end of the file" into HeaderError ("is truncated: ..."). Raises HeaderIncomplete when
    `buf` stops inside the header (fetch at least `.need` bytes and retry)."""
    cur = _Cursor(buf, file_size, limits)
    cur.need(4)
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise HeaderError("is not a GGUF file (bad magic)")
    cur.pos = 4
    version = cur.u32()
    if version not in SUPPORTED_VERSIONS:
        raise HeaderError(f"uses unsupported GGUF version {version}")
    n_tensors, n_kv = cur.u64(), cur.u64()
    cur.check_count(n_kv, limits.max_metadata, 13, "metadata entries", "the header")  # key len + 1 char + type + 1 byte
    metadata, alignment_type = _read_metadata(cur, n_kv)
    alignment = _alignment(metadata.get("general.alignment"), alignment_type)
    cur.section = "header"
    cur.check_count(n_tensors, limits.max_tensors, 25, "tensors", "the header")  # name len + 1 char + n_dims + type + offset
    tensors = _read_tensors(cur, n_tensors)
    data_offset = -(-cur.pos // alignment) * alignment
    return GGUFHeader(version, metadata, tensors, alignment, data_offset)


def _read_metadata(cur: _Cursor, count: int) -> tuple[dict, int | None]:
    """The metadata entries, and the value type of general.alignment (None when absent).

    Speed matters here: a hostile header may hold a million entries (limits.max_metadata), and
    the cursor's checked, method-per-field walk costs ~7 us each. Entries whose key and value lie
    wholly inside the buffer (scalars and strings) are decoded inline at ~1 us; anything else (an
    array, the end of the buffer, a bad length, a bad byte) is read again from the entry's first
    byte by the cursor, which takes the same bytes to the same value or raises the precise error.
    """
    metadata: dict = {}
    alignment_type = None
    cur.section = "metadata"
    buf, end, max_string = cur.buf, cur.end, cur.limits.max_string_bytes
    keep = min(cur.limits.keep_array_items, cur.limits.max_array_items)   # longer: the cursor
    u64, u32, scalars = _U64.unpack_from, _U32.unpack_from, _SCALAR_UNPACK
    pos, last_key = cur.pos, ""
    for i in range(count):
        try:
            n = u64(buf, pos)[0]
            at = pos + 8 + n
            if n > max_string or at + 4 > end:
                raise _Careful
            key = str(buf[pos + 8:at], "utf-8")
            vtype = u32(buf, at)[0]
            at += 4
            scalar = scalars.get(vtype)
            if scalar is not None:
                if at + scalar[1] > end:
                    raise _Careful
                value = scalar[0](buf, at)[0]
                at += scalar[1]
            elif vtype == STRING:
                n = u64(buf, at)[0]
                if n > max_string or at + 8 + n > end:
                    raise _Careful
                value = str(buf[at + 8:at + 8 + n], "utf-8", "replace")
                at += 8 + n
            elif vtype == ARRAY:
                scalar = scalars.get(u32(buf, at)[0])    # arrays of strings: the cursor
                n = u64(buf, at + 4)[0]
                if scalar is None or n > keep or at + 12 + n * scalar[1] > end:
                    raise _Careful
                value = list(scalar[2](buf, at + 12, n))
                at += 12 + n * scalar[1]
            else:
                raise _Careful
        except (_Careful, struct.error, UnicodeDecodeError):
            cur.pos, cur.index, cur.last_key = pos, i, last_key
            key = cur.name()
            vtype = cur.u32()
            value = cur.value(vtype)
            at = cur.pos
        if key in metadata:
            cur.index = i
            cur.corrupt(f"metadata key {quoted(key)} appears twice")
        metadata[key] = value
        if key == "general.alignment":
            alignment_type = vtype
        pos, last_key = at, key
    cur.pos = pos
    return metadata, alignment_type


def _alignment(value, vtype: int | None) -> int:
    if vtype is None:
        return DEFAULT_ALIGNMENT
    if vtype != UINT32 or value <= 0 or value & (value - 1):
        raise HeaderError(f"is corrupt: general.alignment must be a power of two stored as uint32 "
                          f"(it is {shown(value)})")
    return value


def _read_tensors(cur: _Cursor, count: int) -> tuple[TensorInfo, ...]:
    """The tensor table. As with the metadata, a well-formed entry inside the buffer is decoded
    inline; any other is read again by the cursor (`_tensor_fields`) for the precise error."""
    types, limits = ggml_types(), cur.limits
    tensors, seen = [], set()
    cur.section = "tensors"
    buf, end, max_name = cur.buf, cur.end, limits.max_name_bytes
    max_dims = min(limits.max_dims, len(_DIMS) - 1)   # more: the cursor reads them
    u64, u32, type_offset = _U64.unpack_from, _U32.unpack_from, _TYPE_OFFSET.unpack_from
    pos = cur.pos
    for i in range(count):
        try:
            n = u64(buf, pos)[0]
            at = pos + 8 + n
            if n > max_name or at + 4 > end:
                raise _Careful
            name = str(buf[pos + 8:at], "utf-8")
            n_dims = u32(buf, at)[0]
            if n_dims > max_dims or at + 16 + 8 * n_dims > end:
                raise _Careful
            shape = _DIMS[n_dims].unpack_from(buf, at + 4)
            at += 4 + 8 * n_dims
            ggml_type, offset = type_offset(buf, at)
            at += 12
        except (_Careful, struct.error, UnicodeDecodeError):
            cur.pos, cur.index = pos, i
            name, shape, ggml_type, offset = _tensor_fields(cur, i)
            at = cur.pos
        if name in seen:
            cur.index = i
            cur.corrupt(f"tensor {quoted(name)} appears twice")
        seen.add(name)
        known = types.get(ggml_type)
        if known is None:
            raise HeaderError(f"has tensor {quoted(name)} of unknown type {ggml_type} (made by a newer "
                              "llama.cpp, or corrupt)")
        type_name, block, type_size = known
        n_elements = _elements(name, shape)
        if shape and shape[0] % block:
            cur.corrupt(f"tensor {quoted(name)} has {shape[0]} values per row, not a multiple of the "
                        f"{type_name} block size {block}")
        n_bytes = n_elements // block * type_size
        if n_bytes >= 1 << 64:
            cur.corrupt(f"tensor {quoted(name)} claims {n_bytes:,} bytes")
        tensors.append(TensorInfo(name, shape, ggml_type, offset, n_elements, n_bytes))
        pos = at
    cur.pos = pos
    return tuple(tensors)


def _tensor_fields(cur: _Cursor, i: int) -> tuple[str, tuple[int, ...], int, int]:
    """One tensor-table entry through the checked cursor: (name, shape, type, offset)."""
    limits = cur.limits
    name = cur.name()
    if len(name.encode("utf-8")) > limits.max_name_bytes:
        cur.corrupt(f"tensor name {quoted(name[:40] + '...')} is too long")
    n_dims = cur.u32()
    if n_dims > limits.max_dims:
        cur.corrupt(f"tensor {i + 1} has more than {limits.max_dims} dimensions")
    cur.need(8 * n_dims)
    shape = struct.unpack_from(f"<{n_dims}Q", cur.buf, cur.pos)
    cur.pos += 8 * n_dims
    return name, shape, cur.u32(), cur.u64()


def _elements(name: str, shape: tuple[int, ...]) -> int:
    """Element count, refused where llama.cpp's int64 arithmetic would overflow (gguf.cpp)."""
    n = 1
    for d in shape:
        if d > _INT64_MAX or (d > 1 and n > _INT64_MAX // d):
            raise HeaderError(f"is corrupt: tensor {quoted(name)} claims more than {_INT64_MAX:,} elements")
        n *= d
    return n


class HeaderRead(NamedTuple):
    header: GGUFHeader
    bytes_read: int          # the prefix that was parsed
    file_size: int | None    # when the source said


def read_prefix(fetch: Callable[[int, int], tuple[bytes, int | None]], *, first_bytes: int = FIRST_BYTES,
                limits: Limits = LIMITS) -> HeaderRead:
    """Read a header through `fetch(start, end) -> (bytes of [start, end), file size or None)`,
    which may return fewer bytes at the end of the file. Starts with `first_bytes`, grows the
    prefix (at least 4x per round, so even a 10 MB header takes few round trips) and re-parses
    until the header is complete. Raises HeaderError when the file ends inside the header or the
    header is larger than `limits.max_header_bytes`."""
    prefix = bytearray()
    total = None
    want = min(first_bytes, limits.max_header_bytes)
    while True:
        chunk, size = fetch(len(prefix), want)
        total = size if size is not None else total
        prefix += chunk
        try:
            return HeaderRead(parse_header(prefix, file_size=total, limits=limits), len(prefix), total)
        except HeaderIncomplete as more:
            if not chunk or (total is not None and len(prefix) >= total):
                raise HeaderError(f"is truncated: it ends inside {more.where}") from None
            want = max(more.need, 4 * len(prefix))
            if total is not None:
                want = min(want, total)
            want = min(want, limits.max_header_bytes)


def read_header(path: str | Path, *, limits: Limits = LIMITS) -> GGUFHeader:
    """The header of a local GGUF file, parsed once through a read-only memory map (no copy;
    every value is copied out, and the map is closed before returning).

    Raises GGUFError (one line naming the file) for an empty, truncated or invalid header, and
    OSError when the file cannot be read."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            return parse_open_file(f, limits=limits)
        except HeaderError as exc:
            raise GGUFError(exc.naming(path.name)) from None


def parse_open_file(f, *, limits: Limits = LIMITS) -> GGUFHeader:
    """parse_header over an open binary file, whole (so HeaderIncomplete cannot happen)."""
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        raise HeaderError("is empty (0 bytes)")
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return parse_header(mm, file_size=size, limits=limits)
