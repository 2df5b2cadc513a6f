"""Validate one whole GGUF file: `check_file(path) -> CheckedFile`, or GGUFError with one line.

The header goes through the one reader (`reader.py`, which already refuses what llama.cpp's
gguf.cpp refuses while parsing); here come the checks that need the file itself: it exists and is
a regular readable file, it is GGUF at all (with a better word for what it is otherwise), and its
tensor data lies where llama.cpp will look for it (offsets packed in order and aligned, every byte
inside the file). A file that passes does not make llama.cpp abort on its container.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from quantdesk.core.text import quoted, shown
from quantdesk.core.units import human_bytes

from .errors import GGUFError, HeaderError
from .header import GGUFHeader, TensorInfo
from .reader import GGUF_MAGIC, SUPPORTED_VERSIONS, parse_open_file

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


@dataclass(frozen=True)
class CheckedFile:
    """One validated .gguf file (a whole model, or one part of a split one)."""
    path: Path
    file_size: int
    header: GGUFHeader

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def metadata(self) -> dict:
        return self.header.metadata

    @property
    def tensors(self) -> tuple[TensorInfo, ...]:
        return self.header.tensors


def check_file(path: str | Path) -> CheckedFile:
    """Parse and validate one .gguf file completely; raise GGUFError with one line if unusable."""
    path = Path(path)
    name = shown(path.name)
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
            size = os.fstat(f.fileno()).st_size
            _sniff(f.read(24), name)
            header = parse_open_file(f)
    except HeaderError as exc:
        raise GGUFError(exc.naming(name)) from None
    except PermissionError:
        raise GGUFError(f"{name} cannot be read (permission denied)") from None
    except MemoryError:
        raise GGUFError(f"{name} is corrupt: its header claims more data than fits in memory") from None
    except OSError as exc:
        raise GGUFError(f"{name} cannot be read ({exc.strerror or exc})") from None
    try:
        _check_data(header, size)
    except HeaderError as exc:
        raise GGUFError(exc.naming(name)) from None
    return CheckedFile(path, size, header)


def _sniff(head: bytes, name: str) -> None:
    """Checks before parsing, for a message that says what the file is: magic, byte order, version."""
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


def _check_data(header: GGUFHeader, file_size: int) -> None:
    """Tensor data as llama.cpp requires it: each tensor right after the previous one (padded to
    the alignment), all of it inside the file."""
    expected = 0
    alignment = header.alignment
    for t in header.tensors:
        if t.offset != expected:
            raise HeaderError(f"is corrupt: tensor {quoted(t.name)} starts at data offset {t.offset}, "
                              f"expected {expected}")
        end = header.data_offset + t.offset + t.n_bytes
        if end > file_size:
            need = max(end, header.data_offset + header.data_bytes)
            raise HeaderError(f"is truncated: the file is {human_bytes(file_size)} but its tensors need "
                              f"{human_bytes(need)} ({human_bytes(need - file_size)} missing, starting in "
                              f"tensor {quoted(t.name)}); download or copy it again")
        expected = -(-(t.offset + t.n_bytes) // alignment) * alignment
