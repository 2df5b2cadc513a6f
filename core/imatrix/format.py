"""llama.cpp's importance-matrix files: the GGUF form `llama-imatrix` writes today and the older
binary `.dat` form it still reads.

GGUF layout (tools/imatrix/imatrix.cpp, save_imatrix): general.type = "imatrix",
imatrix.datasets (string array), imatrix.chunk_count and imatrix.chunk_size (u32); per weight
tensor NAME, F32 tensors `NAME.in_sum2` (ne = [n_cols, n_mat]: sums of squared inputs) and
`NAME.counts` (ne = [1, n_mat]: tokens seen). No general.architecture, like llama-imatrix.

Readers (llama-quantize's load_imatrix) turn that into a mean per column: in_sum2 / count, and 1
where a matrix saw no token. The .dat form stores per entry name, ncall and values already
multiplied by ncall; its mean is values / ncall.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KV_DATASETS = "imatrix.datasets"
KV_CHUNK_COUNT = "imatrix.chunk_count"
KV_CHUNK_SIZE = "imatrix.chunk_size"


class ImatrixError(ValueError):
    """One line for the user: missing, corrupt or wrong-kind file."""


@dataclass
class Imatrix:
    # name -> (in_sum2 float32 (n_mat, n_cols), counts float32 (n_mat,))
    entries: dict[str, tuple[np.ndarray, np.ndarray]]
    chunk_count: int = 0
    chunk_size: int = 0
    datasets: list[str] = field(default_factory=list)

    def means(self) -> dict[str, np.ndarray]:
        """{tensor: float32 vector of n_mat * n_cols} exactly as llama-quantize computes it."""
        out = {}
        for name, (sums, counts) in self.entries.items():
            sums = np.asarray(sums, dtype=np.float32).reshape(len(counts), -1)
            c = np.asarray(counts, dtype=np.float32)[:, None]
            vals = np.where(c > 0, sums / np.where(c > 0, c, 1).astype(np.float32), np.float32(1))
            out[name] = np.ascontiguousarray(vals.reshape(-1), dtype=np.float32)
        return out


def save_imatrix(path: str | Path, imatrix: Imatrix) -> Path:
    """Write the GGUF form atomically (NAME.part, journaled and locked while written, so a
    kill -9 leaves nothing the next start does not remove; then renamed)."""
    from gguf import GGUFWriter

    from quantdesk.core.output_files import PartBusy, PartFile
    path = Path(path)
    try:
        with PartFile(path) as part:   # leaving the block without commit() removes the .part
            writer = GGUFWriter(part.path, arch="")
            try:
                writer.kv_data[0].pop("general.architecture", None)   # llama-imatrix writes none
                writer.add_type("imatrix")
                writer.add_array(KV_DATASETS, list(imatrix.datasets))
                writer.add_uint32(KV_CHUNK_COUNT, int(imatrix.chunk_count))
                writer.add_uint32(KV_CHUNK_SIZE, int(imatrix.chunk_size))
                for name in sorted(imatrix.entries):                  # deterministic order, as llama.cpp
                    sums, counts = imatrix.entries[name]
                    counts = np.asarray(counts, dtype=np.float32).reshape(-1, 1)
                    sums = np.asarray(sums, dtype=np.float32).reshape(len(counts), -1)
                    writer.add_tensor(f"{name}.in_sum2", np.ascontiguousarray(sums))
                    writer.add_tensor(f"{name}.counts", np.ascontiguousarray(counts))
                writer.write_header_to_file()
                writer.write_kv_data_to_file()
                writer.write_tensors_to_file()
            finally:
                writer.close()
            part.commit()
    except PartBusy as exc:
        raise ImatrixError(str(exc)) from None
    except OSError as exc:
        raise ImatrixError(f"cannot write {path.name}: {exc.strerror or exc}") from None
    return path


def read_imatrix(path: str | Path) -> Imatrix:
    path = Path(path)
    if not path.is_file():
        raise ImatrixError(f"imatrix file {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    try:
        return _read_gguf(path) if magic == b"GGUF" else _read_dat(path)
    except ImatrixError:
        raise
    except (OSError, ValueError, KeyError, IndexError, struct.error, UnicodeDecodeError) as exc:
        raise ImatrixError(f"{path.name} is not a valid imatrix file ({exc})") from None


def load_imatrix(path: str | Path) -> dict[str, np.ndarray]:
    """{tensor name: float32 importance per input column} for the quantizer."""
    means = read_imatrix(path).means()
    if not means:
        raise ImatrixError(f"{Path(path).name} holds no importance data")
    return means


def _read_gguf(path: Path) -> Imatrix:
    from gguf import GGUFReader
    reader = GGUFReader(path, "r")

    def value(key):
        f = reader.get_field(key)
        return None if f is None else f.contents()

    kind = value("general.type")
    if kind != "imatrix":
        what = f"a {value('general.architecture')} model" if value("general.architecture") else \
            "not an importance matrix"
        raise ImatrixError(f"{path.name} is {what}, not an imatrix file")
    tensors = {t.name: t for t in reader.tensors}
    entries = {}
    for name, t in tensors.items():
        if not name.endswith(".in_sum2"):
            continue
        base = name[:-len(".in_sum2")]
        if base + ".counts" not in tensors:
            raise ImatrixError(f"{path.name}: {base} has sums but no counts")
        counts = np.array(tensors[base + ".counts"].data, dtype=np.float32).reshape(-1)
        sums = np.array(t.data, dtype=np.float32).reshape(len(counts), -1)
        entries[base] = (sums, counts)
    datasets = value(KV_DATASETS) or []
    return Imatrix(entries, int(value(KV_CHUNK_COUNT) or 0), int(value(KV_CHUNK_SIZE) or 0),
                   [str(d) for d in datasets])


def _read_dat(path: Path) -> Imatrix:
    raw = path.read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from(fmt, raw, pos)
        pos += struct.calcsize(fmt)
        return vals

    (n_entries,) = take("<i")
    if n_entries < 1 or n_entries > 1_000_000:
        raise ImatrixError(f"{path.name} is neither a GGUF nor a legacy .dat imatrix file")
    entries = {}
    for _ in range(n_entries):
        (n,) = take("<i")
        name = raw[pos:pos + n].decode("utf-8")
        pos += n
        ncall, nval = take("<ii")
        values = np.frombuffer(raw, dtype="<f4", count=nval, offset=pos).astype(np.float32)
        pos += 4 * nval
        # Stored as mean * ncall: keep it as (sums, counts=ncall), which means() divides back.
        entries[name] = (values.reshape(1, -1), np.array([max(ncall, 0)], dtype=np.float32))
        if ncall <= 0:   # llama-quantize keeps the raw values when ncall is 0
            entries[name] = (values.reshape(1, -1), np.array([1.0], dtype=np.float32))
    chunk_count, datasets = 0, []
    if pos + 4 <= len(raw):
        (chunk_count,) = take("<i")
        if pos + 4 <= len(raw):
            (n,) = take("<i")
            datasets = [raw[pos:pos + n].decode("utf-8", "replace")]
    return Imatrix(entries, chunk_count, 0, datasets)
