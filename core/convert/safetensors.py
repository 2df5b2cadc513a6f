"""Memory-mapped reading of Hugging Face `*.safetensors` checkpoints (one file or sharded).

The format is an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range, then the raw data. We parse the header ourselves, memory-map each shard and
convert rows on demand; converted pages are released again (madvise), so resident memory stays
at one chunk of rows, not the model. bfloat16 has no numpy dtype: its uint16 bits are widened to
float32 (a shift), which is exact.
"""
from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConvertError

# dtypes we convert from, with their numpy storage type; anything else is refused by name.
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}
_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
          "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's own limit


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


def read_header(path: Path) -> dict[str, TensorRef]:
    """Parse one .safetensors header and check every tensor lies inside the file."""
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
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConvertError(f"{path.name} is not a safetensors file (bad JSON header)") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path.name} is not a safetensors file (bad header)")
    base = 8 + n
    refs: dict[str, TensorRef] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape = str(info["dtype"]), tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ConvertError(f"{path.name}: malformed header entry for {name}") from None
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if dtype in _SIZES and end - begin != count * _SIZES[dtype]:
            raise ConvertError(f"{path.name}: tensor {name} has {end - begin} bytes, "
                               f"expected {count * _SIZES[dtype]}")
        if base + end > size:
            raise ConvertError(f"{path.name} is truncated: tensor {name} ends at byte "
                               f"{base + end} but the file has {size}")
        refs[name] = TensorRef(name, path, dtype, shape, base + begin, end - begin)
    return refs


def find_shards(folder: Path) -> list[Path]:
    """The checkpoint files of an HF folder: from the index when there is one, else *.safetensors."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConvertError(f"{index.name} is not a valid safetensors index") from None
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise ConvertError(f"missing shard {missing[0]} listed in {index.name}"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        return [folder / n for n in names]
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise ConvertError(f"no *.safetensors weights in {folder}")
    return shards


class SafetensorsCheckpoint:
    """All tensors of a (possibly sharded) checkpoint, loaded one at a time as float32."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.refs: dict[str, TensorRef] = {}
        for shard in find_shards(folder):
            for name, ref in read_header(shard).items():
                if name in self.refs:
                    raise ConvertError(f"tensor {name} appears in two shards")
                self.refs[name] = ref
        index = folder / "model.safetensors.index.json"
        if index.is_file():  # every tensor the index promises must be there
            expected = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            absent = sorted(set(expected) - set(self.refs))
            if absent:
                raise ConvertError(f"tensor {absent[0]} listed in {index.name} is missing "
                                   f"from {expected[absent[0]]}")
        self._maps: dict[Path, mmap.mmap] = {}

    def names(self) -> list[str]:
        return list(self.refs)

    def load(self, name: str) -> np.ndarray:
        """The tensor as a new float32 array (bf16 widened exactly)."""
        ref = self.refs[name]
        n_rows = ref.shape[0] if ref.shape else 1
        return self.read_rows(name, 0, n_rows).reshape(ref.shape)

    def _map(self, path: Path) -> mmap.mmap:
        mm = self._maps.get(path)
        if mm is None:
            try:
                with open(path, "rb") as f:
                    mm = self._maps[path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                raise ConvertError(f"cannot read {path.name}: {exc}") from None
        return mm

    def read_rows(self, name: str, r0: int, r1: int) -> np.ndarray:
        """Rows r0:r1 of the tensor (seen as 2-D, first axis = rows) as a new float32 array."""
        ref = self.refs[name]
        if ref.dtype not in _DTYPES:
            raise ConvertError(f"tensor {name} has dtype {ref.dtype}; only F32, F16 and BF16 "
                               "checkpoints can be converted")
        n_rows = ref.shape[0] if ref.shape else 1
        row_bytes = ref.nbytes // n_rows if n_rows else 0
        start, end = ref.start + r0 * row_bytes, ref.start + r1 * row_bytes
        mm = self._map(ref.path)
        if end > len(mm):  # the file shrank since its header was checked
            raise ConvertError(f"{ref.path.name} is truncated: tensor {name} is cut short")
        data = np.frombuffer(mm, dtype=_DTYPES[ref.dtype], count=(end - start) // ref.itemsize,
                             offset=start).reshape(r1 - r0, -1)
        if ref.dtype == "BF16":
            out = (data.astype(np.uint32) << 16).view(np.float32)
        else:
            out = data.astype(np.float32)  # a copy, also for F32: the mapping is released below
        del data
        if hasattr(mm, "madvise"):
            # Pages we have converted leave our resident set (the OS page cache keeps them), so
            # resident memory stays at one chunk however large the model is.
            lo = start - start % mmap.PAGESIZE
            mm.madvise(mmap.MADV_DONTNEED, lo, end - lo)
        return out

    def close(self) -> None:
        for mm in self._maps.values():
            try:
                mm.close()
            except BufferError:  # a caller still holds a view; the mapping goes with it
                pass
        self._maps.clear()
