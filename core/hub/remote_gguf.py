"""Read a GGUF file's header (metadata + tensor table) over HTTP without downloading the file.

The parsing is `quantdesk.core.gguf.read_prefix`; this module only supplies the bytes: `Range`
requests for the first megabyte, then larger windows when the reader says the header goes on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from quantdesk.core.hub.connection import auth_headers, check_online, endpoint, session
from quantdesk.core.hub.errors import HubError, translate

FIRST_BYTES = 1 << 20          # most headers fit in 1 MiB; big vocabularies need a few MB more


@dataclass
class RemoteGGUF:
    """What the header of a remote GGUF says (the same facts core.gguf.ModelInfo carries)."""
    url: str
    file_size: int | None
    bytes_fetched: int
    data_offset: int
    metadata: dict                     # scalars, strings, short arrays; long arrays -> ArrayInfo
    tensors: list = field(default_factory=list)   # core.gguf.TensorInfo

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
        """From general.file_type (LlamaFileType), else the type of most weights."""
        from quantdesk.core.gguf import file_type_name
        return file_type_name(self.metadata, self.tensors)

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
                       first_bytes: int = FIRST_BYTES) -> RemoteGGUF:
    """Parse the header of `filename` in `repo_id` from the hub, fetching only a prefix."""
    from quantdesk.core.gguf import HeaderError, read_prefix
    check_online(f"read the header of {filename}")
    url = file_url(repo_id, filename, revision)

    def fetch(start: int, end: int) -> tuple[bytes, int | None]:
        try:
            return _fetch_range(url, start, end)
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, f"read the header of {filename}") from None

    try:
        got = read_prefix(fetch, first_bytes=first_bytes)
    except HeaderError as exc:
        raise HubError(exc.naming(filename)) from None
    header = got.header
    return RemoteGGUF(url, got.file_size, got.bytes_read, header.data_offset, dict(header.metadata),
                      list(header.tensors))
