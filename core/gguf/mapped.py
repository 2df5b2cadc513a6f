"""A GGUF file's tensor data, memory-mapped through gguf-py's GGUFReader (for the quantizer).

The header reader (`reader.py`) copies out what a header says; a quantizer reading a GGUF source
needs the weights themselves, paged in one tensor at a time, and the metadata as the typed values
GGUFWriter takes back. What that needs of gguf-py's insides (a ReaderField's parts layout, the
numpy memmap's mapping) stays here.
"""
from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any, Iterator


class MappedGGUF:
    """GGUFReader over `path` (mode "r": nothing is copied until a tensor is read)."""

    def __init__(self, path: str | Path):
        from gguf import GGUFReader
        self._reader = GGUFReader(path, "r")
        # numpy keeps the mmap.mmap behind a memmap private; we need it to drop converted pages.
        self._mmap = getattr(self._reader.data, "_mmap", None)

    @property
    def tensors(self) -> list:
        """gguf-py ReaderTensors: name, tensor_type, shape, n_bytes, data_offset, data (a view)."""
        return self._reader.tensors

    def value(self, key: str, default: Any = None) -> Any:
        """A metadata value (first item of an array), or `default` when the key is absent."""
        f = self._reader.get_field(key)
        if f is None:
            return default
        v = f.contents()
        return v[0] if isinstance(v, list) and v else v

    def metadata_entries(self) -> Iterator[tuple[str, Any, Any, Any]]:
        """(key, value, value type, array item type or None) for every entry GGUFWriter can write
        back with add_key_value; strings stay bytes (a token need not be valid UTF-8). Arrays of
        arrays are left out: llama.cpp reads none."""
        from gguf import GGUFValueType
        for key, f in self._reader.fields.items():
            if key.startswith("GGUF."):
                continue
            vtype = f.types[0]
            if vtype == GGUFValueType.ARRAY:
                if len(f.types) > 2:
                    continue
                sub = f.types[-1]
                if sub == GGUFValueType.STRING:
                    value = [bytes(f.parts[i]) for i in f.data]
                else:
                    value = [f.parts[i].tolist()[0] for i in f.data]
                yield key, value, vtype, sub
            elif vtype == GGUFValueType.STRING:
                yield key, bytes(f.parts[f.data[0]]), vtype, None
            else:
                yield key, f.parts[f.data[0]].tolist()[0], vtype, None

    def release_pages(self, start: int, end: int) -> None:
        """Drop file bytes [start, end) from our resident set (the page cache keeps them), so
        resident memory stays at one chunk whatever the model size."""
        if self._mmap is not None and hasattr(self._mmap, "madvise"):
            lo = start - start % mmap.PAGESIZE
            self._mmap.madvise(mmap.MADV_DONTNEED, lo, end - lo)
