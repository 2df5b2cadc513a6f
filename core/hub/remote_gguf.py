"""Read a GGUF file's header (metadata + tensor table) over HTTP without downloading the file.

We fetch the first bytes with `Range` requests, growing the window only when the header needs
more, and hand the prefix to gguf-py's own `GGUFReader`: a small subclass makes its reads past
the fetched prefix raise `_NeedMore` while parsing the header (we fetch more and retry) and, for the
tensor data it never needs to read, returns zero-stride placeholder views (no memory, no bytes).
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field

from quantdesk.core.hub.connection import auth_headers, check_online, endpoint, session
from quantdesk.core.hub.errors import HubError, translate

FIRST_BYTES = 1 << 20          # most headers fit in 1 MiB; big vocabularies need a few MB more
MAX_HEADER_BYTES = 64 << 20    # larger than any real header: refuse rather than stream a model
_SMALL_ARRAY = 1024            # arrays up to this length are kept (per-layer values); longer: length only


class _NeedMore(Exception):
    def __init__(self, end: int):
        self.end = end


def _reader_class():
    import struct

    import numpy as np
    from gguf import GGUFReader, GGUFValueType

    class PrefixGGUFReader(GGUFReader):
        """GGUFReader over a prefix of the file; see the module docstring.

        Long arrays (vocabulary, scores, merges: 10^5..10^6 elements) are skipped by their byte
        extent instead of being split into one numpy view per element, which is what makes
        GGUFReader take tens of seconds on a large vocabulary; such fields keep only their length.
        """
        _tensor_phase = False

        def _get(self, offset, dtype, count=1, override_order=None):
            count = int(count)
            end = offset + int(np.empty([], dtype=dtype).itemsize) * count
            if end > len(self.data):
                if not self._tensor_phase:
                    raise _NeedMore(end)
                zero = np.zeros(1, dtype=dtype)
                return np.lib.stride_tricks.as_strided(zero, shape=(count,), strides=(0,), writeable=False)
            return super()._get(offset, dtype, count, override_order)

        def _get_field_parts(self, orig_offs, raw_type):
            if GGUFValueType(raw_type) != GGUFValueType.ARRAY:
                return super()._get_field_parts(orig_offs, raw_type)
            raw_itype = self._get(orig_offs, np.uint32)
            alen = self._get(orig_offs + 4, np.uint64)
            count, itype = int(alen[0]), GGUFValueType(int(raw_itype[0]))
            if count <= _SMALL_ARRAY or itype == GGUFValueType.ARRAY:
                return super()._get_field_parts(orig_offs, raw_type)
            offs = orig_offs + 12
            if itype == GGUFValueType.STRING:
                buf = memoryview(self.data)
                native = "<" if sys.byteorder == "little" else ">"
                fmt = (native if self.byte_order == "I" else {"<": ">", ">": "<"}[native]) + "Q"
                unpack, size = struct.Struct(fmt).unpack_from, len(self.data)
                for _ in range(count):
                    if offs + 8 > size:
                        raise _NeedMore(offs + 8)
                    offs += 8 + unpack(buf, offs)[0]
            else:
                offs += int(np.empty([], dtype=self.gguf_scalar_to_np[itype]).itemsize) * count
            if offs > len(self.data):
                raise _NeedMore(offs)
            return offs - orig_offs, [raw_itype, alen], [], [GGUFValueType.ARRAY, itype]

        def _build_tensors(self, start_offs, fields):
            self._tensor_phase = True
            super()._build_tensors(start_offs, fields)

    return PrefixGGUFReader


@dataclass
class RemoteTensor:
    name: str
    type: str            # GGML type name: "Q4_K", "F32", ...
    shape: list[int]     # GGUF order: shape[0] is the row length (ne0)
    n_elements: int
    n_bytes: int
    ggml_type: int = 0   # the GGMLQuantizationType value (what the planner reads)


@dataclass
class RemoteGGUF:
    """What the header of a remote GGUF says (the same facts gguf_info.ModelInfo carries)."""
    url: str
    file_size: int | None
    bytes_fetched: int
    data_offset: int
    metadata: dict                     # scalars, strings, short arrays; long arrays -> their length
    tensors: list[RemoteTensor] = field(default_factory=list)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_value(self, key: str, default=0):
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def parameters(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @property
    def bits_per_weight(self) -> float | None:
        return 8 * self.tensor_bytes / self.parameters if self.parameters else None

    @property
    def file_type(self) -> str:
        """From general.file_type (LlamaFileType), else the type holding most tensor bytes."""
        from gguf import LlamaFileType
        ftype = self.metadata.get("general.file_type")
        try:
            name = LlamaFileType(int(ftype)).name
            return {"ALL_F32": "F32"}.get(name, name.removeprefix("MOSTLY_"))
        except (TypeError, ValueError):
            by_type: dict[str, int] = {}
            for t in self.tensors:
                by_type[t.type] = by_type.get(t.type, 0) + t.n_bytes
            return max(by_type, key=by_type.get) if by_type else "unknown"

    @property
    def split_count(self) -> int:
        return int(self.metadata.get("split.count", 1) or 1)

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    def to_json(self) -> dict:
        return {
            "url": self.url, "file_size": self.file_size, "bytes_fetched": self.bytes_fetched,
            "architecture": self.architecture, "file_type": self.file_type,
            "parameters": self.parameters, "tensor_count": len(self.tensors),
            "bits_per_weight": self.bits_per_weight,
            "context_length": self.arch_value("context_length"),
            "block_count": self.arch_value("block_count"),
        }


def _field_value(f):
    from gguf import GGUFValueType
    if not f.types:
        return None
    if f.types[0] == GGUFValueType.ARRAY:
        if not f.data and int(f.parts[-1][0]) > _SMALL_ARRAY:
            return int(f.parts[-1][0])   # a long array we skipped: its length (tokens -> vocab size)
        return f.contents()
    return f.contents()


def parse_prefix(prefix: bytes):
    """Parse a GGUF header from its first bytes: (fields, tensors, data_offset). Raises _NeedMore."""
    reader_cls = _reader_class()
    fd, tmp = tempfile.mkstemp(suffix=".gguf-head")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(prefix)
        reader = reader_cls(tmp)
        metadata = {name: _field_value(f) for name, f in reader.fields.items() if not name.startswith("GGUF.")}
        tensors = [RemoteTensor(t.name, t.tensor_type.name, [int(d) for d in t.shape], int(t.n_elements),
                                int(t.n_bytes), int(t.tensor_type)) for t in reader.tensors]
        offset = int(reader.data_offset)
        del reader  # release the memory map before removing the file (Windows)
        return metadata, tensors, offset
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _fetch_range(url: str, start: int, end: int) -> tuple[bytes, int | None]:
    """Bytes [start, end) of url and the file's total size. Reads no more even if the server ignores Range."""
    from huggingface_hub.utils import hf_raise_for_status
    headers = {**auth_headers(), "Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
    with session().stream("GET", url, headers=headers, timeout=30.0) as response:
        if response.status_code >= 400:
            response.read()      # the error body, for huggingface_hub's error message
        hf_raise_for_status(response)
        total = None
        content_range = response.headers.get("Content-Range")
        if content_range and "/" in content_range:
            total = int(content_range.rsplit("/", 1)[1]) if content_range.rsplit("/", 1)[1] != "*" else None
        skip = start if response.status_code == 200 else 0  # server ignored Range: skip to start
        if response.status_code == 200 and response.headers.get("Content-Length"):
            total = int(response.headers["Content-Length"])
        want = end - start
        out = bytearray()
        for chunk in response.iter_bytes():
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            out += chunk
            if len(out) >= want:
                break  # leaving the stream closes the connection: no more is transferred
        return bytes(out[:want]), total


def file_url(repo_id: str, filename: str, revision: str = "main") -> str:
    from huggingface_hub import hf_hub_url
    return hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint())


def read_remote_header(repo_id: str, filename: str, revision: str = "main", *,
                       first_bytes: int = FIRST_BYTES, max_bytes: int = MAX_HEADER_BYTES) -> RemoteGGUF:
    """Parse the header of `filename` in `repo_id` from the hub, fetching only a prefix."""
    check_online(f"read the header of {filename}")
    url = file_url(repo_id, filename, revision)
    prefix, total = b"", None
    want = first_bytes
    while True:
        try:
            chunk, size = _fetch_range(url, len(prefix), want)
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, f"read the header of {filename}") from None
        total = size if size is not None else total
        if not chunk:
            raise HubError(f"{filename} is truncated or empty on the hub (no bytes at offset {len(prefix)})")
        prefix += chunk
        try:
            metadata, tensors, offset = parse_prefix(prefix)
            return RemoteGGUF(url, total, len(prefix), offset, metadata, tensors)
        except _NeedMore as more:
            if total is not None and len(prefix) >= total:
                raise HubError(f"{filename} is truncated: its header runs past the end of the file") from None
            if more.end > max_bytes:
                raise HubError(f"{filename}: GGUF header larger than {max_bytes >> 20} MiB; not reading further") from None
            want = max(more.end, 4 * len(prefix))   # few round trips even for 10 MB headers
            if total is not None:
                want = min(want, total)
            want = min(want, max_bytes)
        except (ValueError, KeyError) as exc:
            raise HubError(f"{filename} is not a valid GGUF file ({exc})") from None
