"""Reading Hugging Face `*.safetensors` checkpoints (one file or sharded), safely.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range, then the raw data. A checkpoint may be damaged, hostile, or shrink while we
read it, and every such case must end in ConvertError (one line), never in a Python error from
deep inside, a read of header bytes as weights, or a crash:

- the header is checked as the reference implementation checks it: integer shapes and offsets,
  byte counts that match dtype × shape, and tensors that tile the data section exactly (no gap,
  no overlap, nothing outside the file);
- data is read with positional reads (pread) into a fresh buffer, not through a memory map: when
  a mapped file shrinks, touching a page past its new end kills the process with SIGBUS, and no
  size check before the access can close that race. A short read is simply "truncated".

Reads go chunk by chunk (the writer asks for a block of rows), so memory stays at one chunk however
large the model is. bfloat16 has no numpy dtype: its uint16 bits are widened to float32 (a shift),
which is exact.
"""
from __future__ import annotations

import json
import math
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantdesk.core.text import shown

from .errors import ConvertError

# dtypes we convert from, with their numpy storage type; anything else is refused by name.
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}
# stored forms the dequantizers read as they are (packed ints, fp8 bytes), see core/convert/dequant
_STORED = {**_DTYPES, "I32": np.int32, "I64": np.int64, "U32": np.uint32, "I8": np.int8, "U8": np.uint8,
           "F8_E4M3": np.uint8, "F8_E5M2": np.uint8}
_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
          "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
          "F8_E8M0": 1, "C64": 8}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's own limit
_MAX_RANK = 8                    # no checkpoint tensor has more axes; GGUF itself allows 4
_MAX_DIM = 1 << 48               # larger than any file; keeps arithmetic far from overflow


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor lives: file, dtype, shape and byte range inside the data section."""
    name: str
    path: Path
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute offset in the file
    nbytes: int

    @property
    def itemsize(self) -> int:
        return _SIZES.get(self.dtype, 1)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _entry(path: Path, name: str, info) -> tuple[str, tuple[int, ...], int, int]:
    """dtype, shape and [begin, end) of one header entry, or ConvertError saying what is wrong."""
    where = f"{path.name}: tensor {shown(name)}"
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise ConvertError(f"{where}: malformed header entry (needs dtype, shape and data_offsets)")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str):
        raise ConvertError(f"{where}: malformed dtype")
    if not isinstance(shape, list) or len(shape) > _MAX_RANK:
        raise ConvertError(f"{where}: the shape must be a list of at most {_MAX_RANK} sizes")
    if not all(_is_int(d) for d in shape):
        raise ConvertError(f"{where}: shape {shown(str(shape))} is not a list of integers")
    if not all(0 <= d <= _MAX_DIM for d in shape):
        raise ConvertError(f"{where}: shape {shown(str(shape))} has a size out of range")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(x) for x in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise ConvertError(f"{where}: data_offsets {shown(str(offsets))} are not a byte range")
    begin, end = offsets
    if dtype in _SIZES:
        expected = math.prod(shape) * _SIZES[dtype]
        if end - begin != expected:
            raise ConvertError(f"{where} has {end - begin} bytes, expected {expected} for "
                               f"{dtype} {shown(str(shape))}")
    return dtype, tuple(shape), begin, end


def read_header(path: Path) -> dict[str, TensorRef]:
    """Parse one .safetensors header and check its tensors tile the rest of the file exactly."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ConvertError(f"{path.name} is truncated (no safetensors header)")
            (n,) = struct.unpack("<Q", head)
            if n > _MAX_HEADER or n + 8 > size:
                raise ConvertError(f"{path.name} is truncated or not a safetensors file "
                                   f"(header of {n} bytes in a {size}-byte file)")
            raw = f.read(n)
    except OSError as exc:
        raise ConvertError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if len(raw) < n:
        raise ConvertError(f"{path.name} is truncated (its header is cut short)")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConvertError(f"{path.name} is not a safetensors file (bad JSON header)") from None
    except RecursionError:
        raise ConvertError(f"{path.name} is not a safetensors file (its header nests too deeply)") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path.name} is not a safetensors file (bad header)")
    base = 8 + n
    entries = []
    for name, info in header.items():
        if name != "__metadata__":
            entries.append((name, *_entry(path, name, info)))
    # The reference reader's rule: sorted by offset, each tensor starts where the previous ended,
    # from 0 to the end of the file. An overlap would read one tensor's bytes as another's (or the
    # header's as weights); a gap or a short file means damage.
    entries.sort(key=lambda e: (e[3], e[4]))
    at = 0
    for name, _, _, begin, end in entries:
        if begin != at:
            what = "overlaps the tensor before it" if begin < at else f"leaves a gap at byte {base + at}"
            raise ConvertError(f"{path.name}: tensor {shown(name)} {what} (bad data_offsets)")
        at = end
    if base + at > size:
        last = entries[-1][0]
        raise ConvertError(f"{path.name} is truncated: tensor {shown(last)} ends at byte "
                           f"{base + at} but the file has {size}")
    if base + at < size:
        raise ConvertError(f"{path.name} has {size - base - at} bytes after its last tensor "
                           "(damaged or not a safetensors file)")
    return {name: TensorRef(name, path, dtype, shape, base + begin, end - begin)
            for name, dtype, shape, begin, end in entries}


def find_shards(folder: Path) -> list[Path]:
    """The checkpoint files of an HF folder: from the index when there is one, else *.safetensors."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(_weight_map(index).values()))
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise ConvertError(f"missing shard {shown(missing[0])} listed in {index.name}"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        return [folder / n for n in names]
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise ConvertError(f"no *.safetensors weights in {folder}")
    return shards


def _weight_map(index: Path) -> dict[str, str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise ConvertError(f"{index.name} is not a valid safetensors index") from None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) and v and "/" not in v and "\\" not in v
                                                    and v not in (".", "..") for v in weight_map.values()):
        raise ConvertError(f"{index.name} is not a valid safetensors index (shards must be file names)")
    return weight_map


class _ShardFile:
    """One open shard read by position: os.preadv where there is one, else seek+read under a lock."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.file = open(path, "rb", buffering=0)
        except OSError as exc:
            raise ConvertError(f"cannot read {path.name}: {exc.strerror or exc}") from None
        self.lock = threading.Lock()

    def read_into(self, buf: np.ndarray, offset: int) -> int:
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view):
            if hasattr(os, "preadv"):
                got = os.preadv(self.file.fileno(), [view[done:]], offset + done)
            else:
                with self.lock:
                    self.file.seek(offset + done)
                    got = self.file.readinto(view[done:])
            if not got:
                break     # end of file: the caller says "truncated"
            done += got
        return done

    def close(self) -> None:
        self.file.close()


class SafetensorsCheckpoint:
    """All tensors of a (possibly sharded) checkpoint, loaded one at a time as float32."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.refs: dict[str, TensorRef] = {}
        for shard in find_shards(folder):
            for name, ref in read_header(shard).items():
                if name in self.refs:
                    raise ConvertError(f"tensor {shown(name)} appears in two shards")
                self.refs[name] = ref
        index = folder / "model.safetensors.index.json"
        if index.is_file():  # every tensor the index promises must be there
            expected = _weight_map(index)
            absent = sorted(set(expected) - set(self.refs))
            if absent:
                raise ConvertError(f"tensor {shown(absent[0])} listed in {index.name} is missing "
                                   f"from {shown(expected[absent[0]])}")
        self._files: dict[Path, _ShardFile] = {}
        self._open_lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self.refs)

    def load(self, name: str) -> np.ndarray:
        """The tensor as a new float32 array (bf16 widened exactly)."""
        ref = self.refs[name]
        n_rows = ref.shape[0] if ref.shape else 1
        return self.read_rows(name, 0, n_rows).reshape(ref.shape)

    def _file(self, path: Path) -> _ShardFile:
        with self._open_lock:
            shard = self._files.get(path)
            if shard is None:
                shard = self._files[path] = _ShardFile(path)
            return shard

    def read_rows(self, name: str, r0: int, r1: int, row_items: int | None = None) -> np.ndarray:
        """Rows r0:r1 of the tensor (seen as 2-D, first axis = rows, or rows of `row_items`
        values: a 3-D expert tensor read as its last axis) as a new float32 array."""
        ref = self.refs[name]
        if ref.dtype not in _DTYPES:
            raise ConvertError(f"tensor {shown(name)} has dtype {shown(ref.dtype)}; only F32, F16 and BF16 "
                               "checkpoints can be converted")
        buf = self.read_stored(name, r0, r1, row_items)
        if ref.dtype == "BF16":
            return (buf.astype(np.uint32) << 16).view(np.float32)
        return buf if ref.dtype == "F32" else buf.astype(np.float32)

    def read_stored(self, name: str, r0: int, r1: int, row_items: int | None = None) -> np.ndarray:
        """Rows r0:r1 as stored (int32 for packed ints, uint8 for fp8 bytes, uint16 for bf16)."""
        ref = self.refs[name]
        if ref.dtype not in _STORED:
            raise ConvertError(f"tensor {shown(name)} has dtype {shown(ref.dtype)}, which cannot be read")
        n_rows = ref.shape[0] if ref.shape else 1
        if row_items is None:
            row_items = (ref.nbytes // ref.itemsize) // n_rows if n_rows else 0
        buf = np.empty((r1 - r0, row_items), dtype=_STORED[ref.dtype])
        start = ref.start + r0 * row_items * ref.itemsize
        try:
            got = self._file(ref.path).read_into(buf, start)
        except OSError as exc:
            raise ConvertError(f"cannot read {ref.path.name}: {exc.strerror or exc}") from None
        if got < buf.nbytes:  # the file shrank since its header was checked
            raise ConvertError(f"{ref.path.name} is truncated: tensor {shown(name)} is cut short "
                               "(the file changed while it was read)")
        return buf

    def read_raw(self, name: str, first: int = 0, count: int | None = None) -> np.ndarray:
        """The stored bytes of a tensor of any dtype (gpt-oss's packed MXFP4 blocks and scales):
        items first:first+count of its first axis (all by default), shaped as the tensor for
        one-byte dtypes, else flat."""
        ref = self.refs[name]
        outer = ref.shape[0] if ref.shape else 1
        count = outer - first if count is None else count
        step = ref.nbytes // outer if outer else 0
        buf = np.empty(step * count, dtype=np.uint8)
        try:
            got = self._file(ref.path).read_into(buf, ref.start + first * step)
        except OSError as exc:
            raise ConvertError(f"cannot read {ref.path.name}: {exc.strerror or exc}") from None
        if got < buf.nbytes:
            raise ConvertError(f"{ref.path.name} is truncated: tensor {shown(name)} is cut short "
                               "(the file changed while it was read)")
        return buf.reshape((count, *ref.shape[1:])) if ref.itemsize == 1 else buf

    def close(self) -> None:
        with self._open_lock:
            for shard in self._files.values():
                shard.close()
            self._files.clear()
