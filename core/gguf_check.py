"""Validate one GGUF file with gguf-py and boil it down to plain Python values.

gguf-py's GGUFReader parses the container; we subclass it only to add guards (a read past the
end of the file, absurd counts) and to remember how far parsing got, so every failure becomes a
`GGUFError` with one line naming the file. The checks mirror what llama.cpp's gguf loader
rejects (gguf.cpp, llama-model-loader.cpp), so a file that passes here does not make llama.cpp
abort on its container.

GGUFReader memory-maps the file. Nothing it returns may outlive `read_part`: every value is
copied into Python objects and the reader is dropped before returning or raising, so no mapping
(and no file handle, which Windows would keep locked) stays open.
"""
from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType

from quantdesk.core.gguf_info import GGUFError, human_bytes

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4          # GGML_MAX_DIMS
MAX_NAME = 64         # GGML_MAX_NAME (including the terminating NUL)
SMALL_ARRAY = 4096    # metadata arrays up to this length are kept as values (per-layer lists)

# Signatures of files people mistake for models, for a more useful "not a GGUF" message.
_OTHER_FORMATS = [
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive (PyTorch checkpoints are ZIP files)"),
    (b"ggjt", "an old GGJT (pre-GGUF llama.cpp) model"),
    (b"ggml", "an old GGML (pre-GGUF llama.cpp) model"),
    (b"tjgg", "an old GGJT (pre-GGUF llama.cpp) model"),
    (b"lmgg", "an old GGML (pre-GGUF llama.cpp) model"),
    (b"version https://git-lfs", "a Git LFS pointer, not the model itself"),
]
_MIN_SIZE = {t: np.dtype(n).itemsize for t, n in GGUFReader.gguf_scalar_to_np.items()}
_MIN_SIZE[GGUFValueType.STRING] = 8
_MIN_SIZE[GGUFValueType.ARRAY] = 12
_MIN_SIZE = {int(k): v for k, v in _MIN_SIZE.items()}
_ARRAY, _STRING = int(GGUFValueType.ARRAY), int(GGUFValueType.STRING)
_U64 = struct.Struct("<Q")


@dataclass
class TensorSummary:
    name: str
    type_name: str       # "Q4_K", "F32", ...
    n_dims: int
    n_elements: int
    n_bytes: int


@dataclass
class Part:
    """Everything we keep from one .gguf file, as plain Python values."""
    path: Path
    file_size: int
    version: int
    kv: dict[str, Any] = field(default_factory=dict)          # scalars, strings, small arrays
    array_lengths: dict[str, int] = field(default_factory=dict)
    tensors: list[TensorSummary] = field(default_factory=list)


class _Stop(Exception):
    """Raised by the guards below with the user-facing text (without the file name)."""


class _GuardedReader(GGUFReader):
    """GGUFReader that refuses reads past the end and counts that cannot fit in the file."""

    def __init__(self, path: Path):
        self._where = "the header"  # also set before __init__ by read_part, for its messages
        self._kv_seen = 0
        self._tensor_seen = 0
        super().__init__(path, "r")

    def _get(self, offset, dtype, count=1, override_order=None):
        end = int(offset) + np.dtype(dtype).itemsize * int(count)
        if end > self.data.size:
            raise _Stop(f"is truncated: it ends inside {self._where}")
        return super()._get(offset, dtype, count, override_order)

    def _build_fields(self, offs, count):
        self._check_count(offs, count, 13, "metadata entries")  # key len + 1 char + type + 1 byte
        self._where = "metadata entry 1"
        return super()._build_fields(offs, count)

    def _push_field(self, field, skip_sum=False):
        if field.name in self.fields:
            raise _Stop(f"is corrupt: metadata key '{field.name}' appears twice")
        if not field.name.startswith("GGUF."):
            self._kv_seen += 1
            self._where = f"metadata entry {self._kv_seen + 1} (after '{field.name}')"
        return super()._push_field(field, skip_sum)

    def _get_field_parts(self, orig_offs, raw_type):
        raw_type = int(raw_type)
        if raw_type not in _MIN_SIZE:
            raise _Stop(f"is corrupt: metadata entry {self._kv_seen + 1} has unknown value type {raw_type}")
        if raw_type != _ARRAY:
            return super()._get_field_parts(orig_offs, raw_type)
        head = self._get(orig_offs, np.uint32)
        count = self._get(orig_offs + 4, np.uint64)
        item_type, length = int(head[0]), int(count[0])
        if item_type not in _MIN_SIZE:
            raise _Stop(f"is corrupt: metadata entry {self._kv_seen + 1} has unknown array type {item_type}")
        start = orig_offs + 12
        self._check_count(start, length, _MIN_SIZE[item_type], "array items")
        # gguf-py walks arrays one numpy view per item: seconds for a 50k-token vocabulary. Numeric
        # arrays are read as one view instead (contents() still works), string arrays are only
        # walked to find their end (we never need the vocabulary's strings).
        types = [GGUFValueType.ARRAY, GGUFValueType(item_type)]
        if item_type == _STRING:
            end = self._skip_strings(start, length)
            return end - orig_offs, [head, count, self._get(start, np.uint8, end - start)], [], types
        nptype = self.gguf_scalar_to_np.get(GGUFValueType(item_type))
        if nptype is None:  # arrays of arrays: rare and small, leave them to gguf-py
            return super()._get_field_parts(orig_offs, raw_type)
        items = self._get(start, nptype, length)
        return 12 + int(items.nbytes), [head, count, items], [2], types

    def _skip_strings(self, offs: int, count: int) -> int:
        size = int(self.data.size)
        with memoryview(self.data) as buf:
            for _ in range(count):
                if offs + 8 > size:
                    raise _Stop(f"is truncated: it ends inside {self._where}")
                offs += 8 + _U64.unpack_from(buf, offs)[0]
        if offs > size:
            raise _Stop(f"is truncated: it ends inside {self._where}")
        return offs

    def _build_tensor_info(self, offs, count):
        self._check_count(offs, count, 25, "tensors")  # name len + 1 char + n_dims + type + offset
        self._where = "the tensor table"
        return super()._build_tensor_info(offs, count)

    def _get_tensor_info_field(self, orig_offs):
        self._where = f"the tensor table (entry {self._tensor_seen + 1})"
        n_dims_offs = orig_offs + 8 + int(self._get(orig_offs, np.uint64)[0])
        if int(self._get(n_dims_offs, np.uint32)[0]) > MAX_DIMS:
            raise _Stop(f"is corrupt: tensor {self._tensor_seen + 1} has more than {MAX_DIMS} dimensions")
        field = super()._get_tensor_info_field(orig_offs)
        self._tensor_seen += 1
        return field

    def _build_tensors(self, start_offs, fields):
        # Check every tensor the way llama.cpp does before gguf-py maps its data.
        self._where = "the tensor data"
        _check_tensor_table(fields, int(start_offs), int(self.alignment), int(self.data.size))
        super()._build_tensors(start_offs, fields)

    def _check_count(self, offs, count, min_bytes, what):
        count = int(count)
        room = int(self.data.size) - int(offs)
        if count * min_bytes > room:
            raise _Stop(f"is truncated or corrupt: {self._where} claims {count:,} {what}, but only "
                        f"{human_bytes(max(room, 0))} of the file follow")


def _check_tensor_table(fields, data_start: int, alignment: int, file_size: int) -> None:
    expected = 0
    for field in fields:
        _len, name_data, _n_dims, dims, raw_type, offset = field.parts
        try:
            name = bytes(name_data).decode("utf-8")
        except UnicodeDecodeError:
            raise _Stop("is corrupt: a tensor name is not valid UTF-8 text") from None
        raw_type, offset = int(raw_type[0]), int(offset[0])
        if len(bytes(name_data)) >= MAX_NAME:
            raise _Stop(f"is corrupt: tensor name '{name[:40]}...' is too long")
        try:
            qtype = GGMLQuantizationType(raw_type)
            block, type_size = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise _Stop(f"has tensor '{name}' of unknown type {raw_type} (made by a newer "
                        "llama.cpp, or corrupt)") from None
        shape = [int(d) for d in dims]
        n_elements = int(np.prod(shape, dtype=object)) if shape else 1
        if n_elements >= 2**63:
            raise _Stop(f"is corrupt: tensor '{name}' claims {n_elements:,} elements")
        if shape and shape[0] % block:
            raise _Stop(f"is corrupt: tensor '{name}' has {shape[0]} values per row, "
                        f"not a multiple of the {qtype.name} block size {block}")
        if offset != expected:
            raise _Stop(f"is corrupt: tensor '{name}' starts at data offset {offset}, expected {expected}")
        n_bytes = n_elements * type_size // block
        end = data_start + offset + n_bytes
        if end > file_size:
            need = max(end, data_start + _data_size(fields, alignment))
            raise _Stop(f"is truncated: the file is {human_bytes(file_size)} but its tensors need "
                        f"{human_bytes(need)} ({human_bytes(need - file_size)} missing, starting in tensor "
                        f"'{name}'); download or copy it again")
        expected = offset + _padded(n_bytes, alignment)


def _padded(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def _data_size(fields, alignment: int) -> int:
    """Bytes the data section needs if every tensor follows the previous one (as llama.cpp requires)."""
    total = last = 0
    for f in fields:
        dims, raw_type = f.parts[3], int(f.parts[4][0])
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(raw_type)]
        except (ValueError, KeyError):
            break
        n = int(np.prod([int(d) for d in dims], dtype=object)) if len(dims) else 1
        total = total + n * type_size // block
        last = total
        total = _padded(total, alignment)
    return last


def _sniff(path: Path, name: str) -> tuple[int, int]:
    """Checks that need no parser: exists, readable, magic, version. Returns (size, version)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise GGUFError(f"{name} does not exist") from None
    except OSError as exc:
        raise GGUFError(f"{name} cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise GGUFError(f"{name} is a folder, not a GGUF file")
    if not stat.S_ISREG(st.st_mode):  # a pipe or device would block or never end
        raise GGUFError(f"{name} is not a regular file")
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except PermissionError:
        raise GGUFError(f"{name} cannot be read (permission denied)") from None
    except OSError as exc:
        raise GGUFError(f"{name} cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise GGUFError(f"{name} is empty (0 bytes)")
    if not head.startswith(GGUF_MAGIC):
        if len(head) < 4 and GGUF_MAGIC.startswith(head):
            raise GGUFError(f"{name} is truncated: it ends inside the header")
        for magic, what in _OTHER_FORMATS:
            if head.startswith(magic):
                raise GGUFError(f"{name} is not a GGUF file (it is {what})")
        if len(head) >= 9 and head[8:9] == b"{":
            raise GGUFError(f"{name} is not a GGUF file (it looks like safetensors; "
                            "Quantize can convert it)")
        raise GGUFError(f"{name} is not a GGUF file")
    if len(head) < 24:
        raise GGUFError(f"{name} is truncated: it ends inside the header")
    version = int.from_bytes(head[4:8], "little")
    if version & 0xFFFF == 0 and version:
        raise GGUFError(f"{name} is a big-endian GGUF file, which cannot be loaded on this machine")
    if version not in SUPPORTED_VERSIONS:
        hint = " (GGUF v1 is no longer supported; get a newer file)" if version == 1 else ""
        raise GGUFError(f"{name} uses unsupported GGUF version {version}{hint}")
    return st.st_size, version


def _plain(field) -> Any:
    """A ReaderField's value as a Python value, or None for arrays we only count.

    String values are decoded leniently: llama.cpp does not check their encoding either, and a
    stray byte in a token or template is no reason to refuse the model."""
    main = field.types[0] if field.types else None
    if main == GGUFValueType.STRING:
        return bytes(field.parts[-1]).decode("utf-8", "replace")
    if main == GGUFValueType.ARRAY:
        if field.types[-1] in (GGUFValueType.STRING, GGUFValueType.ARRAY) or _length(field) > SMALL_ARRAY:
            return None
    return field.contents()


def _length(field) -> int:
    """Item count of an array field: parts are [key len, key, type, item type, count, ...]."""
    return int(field.parts[4][0])


def _extract(reader: _GuardedReader, part: Part) -> None:
    for key, fld in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        reader._where = f"metadata '{key}'"
        if fld.types and fld.types[0] == GGUFValueType.ARRAY:
            part.array_lengths[key] = _length(fld)
        value = _plain(fld)
        if value is not None:
            part.kv[key] = value
    for t in reader.tensors:
        part.tensors.append(TensorSummary(t.name, t.tensor_type.name, len(t.shape),
                                          int(t.n_elements), int(t.n_bytes)))


def read_part(path: str | Path) -> Part:
    """Parse and validate one .gguf file completely; raise GGUFError with one line if unusable."""
    path = Path(path)
    name = path.name
    size, version = _sniff(path, name)
    message = None
    part = Part(path=path, file_size=size, version=version)
    reader = _GuardedReader.__new__(_GuardedReader)
    reader._where = "the header"
    try:
        reader.__init__(path)
        _extract(reader, part)
    except _Stop as exc:
        message = f"{name} {exc}"
    except UnicodeDecodeError:
        message = f"{name} is corrupt: {reader._where} holds text that is not valid UTF-8"
    except MemoryError:
        message = f"{name} is corrupt: {reader._where} claims more data than fits in memory"
    except OSError as exc:
        message = f"{name} cannot be read ({exc.strerror or exc})"
    except Exception as exc:  # gguf-py/numpy raise assorted errors on corrupt input
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        message = f"{name} is corrupt: {reader._where} could not be read ({reason})"
    # Drop the reader (and its memory map) now; raise outside the except block so the
    # traceback, which pins the reader's frames, is already gone.
    del reader
    if message is not None:
        raise GGUFError(message)
    return part
