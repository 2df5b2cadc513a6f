"""Importance matrices from llama.cpp's `llama-imatrix`: the GGUF form (`NAME.in_sum2` and
`NAME.counts` tensors) and the older binary `.dat` form. Each becomes, per weight tensor, the
mean squared activation of every input column — what the quantization kernels weigh errors by.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..convert import ConvertError


def load_imatrix(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ConvertError(f"imatrix file {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        data = _load_gguf(path) if magic == b"GGUF" else _load_dat(path)
    except (OSError, ValueError, struct.error, IndexError) as exc:
        raise ConvertError(f"{path.name} is not a valid imatrix file: {exc}") from None
    if not data:
        raise ConvertError(f"{path.name} holds no importance data")
    return data


def _load_gguf(path: Path) -> dict[str, np.ndarray]:
    from gguf import GGUFReader
    reader = GGUFReader(path, "r")
    tensors = {t.name: t for t in reader.tensors}
    out = {}
    for name, t in tensors.items():
        if not name.endswith(".in_sum2"):
            continue
        base = name[: -len(".in_sum2")]
        counts = np.asarray(tensors[base + ".counts"].data, dtype=np.float32).reshape(-1)
        sums = np.asarray(t.data, dtype=np.float32).reshape(len(counts), -1)
        values = np.where(counts[:, None] > 0, sums / np.maximum(counts[:, None], 1e-30), 1.0)
        out[base] = np.ascontiguousarray(values.reshape(-1), dtype=np.float32)
    return out


def _load_dat(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from(fmt, raw, pos)
        pos += struct.calcsize(fmt)
        return vals

    (n_entries,) = take("<i")
    out = {}
    for _ in range(n_entries):
        (n,) = take("<i")
        name = raw[pos:pos + n].decode("utf-8")
        pos += n
        ncall, nval = take("<ii")
        values = np.frombuffer(raw, dtype="<f4", count=nval, offset=pos).astype(np.float32)
        pos += 4 * nval
        out[name] = values / ncall if ncall > 0 else values
    return out
