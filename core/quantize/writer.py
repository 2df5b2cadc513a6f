"""The streaming quantizing writer: Source → NAME.gguf.part → verified → renamed to NAME.gguf.

Tensor by tensor, and large tensors in row chunks, so memory stays near one chunk plus buffers.
The header, metadata and tensor table go out first through gguf-py's GGUFWriter (every output
size is known up front); the tensor data follows in the same order with GGUF's 32-byte alignment.
Any failure — bad data, a full disk, a read error, a cancel — removes the .part file and raises
ConvertError with one line; an existing file is never replaced unless `overwrite=True`.
"""
from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from quantdesk import kernels

from quantdesk.core.output_files import PartBusy, PartFile, output_problem

from ..convert import ConvertError, Source, open_source
from .file_types import imatrix_refusal
from .mix import file_type, llama_order_key, tensor_bytes, tensor_types
from .progress import CancelToken, Progress

QUANTIZATION_VERSION = 2          # GGML_QNT_VERSION, written as general.quantization_version
CHUNK_BYTES = 64 * 1024 * 1024    # float32 input per chunk: bounds memory, keeps cancel prompt


class Cancelled(ConvertError):
    """The user cancelled; nothing was left behind."""


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    file_type: str
    tensor_types: dict[str, str]
    size_bytes: int
    source_bytes: int
    seconds: float


def write_bytes(f, data: np.ndarray) -> None:
    """The one place tensor bytes reach the disk (tests replace it to simulate a full disk)."""
    f.write(memoryview(np.ascontiguousarray(data)).cast("B"))


def _pad(f, align: int = 32) -> None:
    pad = -f.tell() % align
    if pad:
        f.write(b"\0" * pad)


def _io_message(exc: OSError, target: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"not enough disk space to write {target.name} in {target.parent}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to {target.parent}: permission denied"
    return f"cannot write {target.name}: {exc.strerror or exc}"


def quantize_model(src: str | Path | Source, out: str | Path, qtype: str, *,
                   backend: str = "auto", threads: int | None = None,
                   imatrix: str | Path | dict | None = None,
                   progress: Callable[[Progress], None] | None = None,
                   cancel: CancelToken | None = None, overwrite: bool = False,
                   allow_requantize: bool = False) -> QuantizeResult:
    """Convert/quantize `src` (HF folder, GGUF or an open Source) to `out` as type `qtype`."""
    start = time.monotonic()
    try:
        ft = file_type(qtype)
    except ValueError as exc:
        raise ConvertError(str(exc)) from None
    out = Path(out)
    problem = output_problem(out, overwrite=overwrite)   # a folder, a 300-character name, ...
    if problem:
        raise ConvertError(problem)

    source = src if isinstance(src, Source) else open_source(src, allow_requantize=allow_requantize)
    try:
        imat = _load_imatrix(imatrix)
        ordered = sorted(source.tensors, key=lambda t: llama_order_key(t.name))
        types = tensor_types([(t.name, t.shape, t.dtype) for t in ordered], ft.name,
                             source.params, has_imatrix=bool(imat),
                             imatrix_names=set(imat) if imat else None)
        if source.tensor_types is not None:
            types = dict(source.tensor_types)
        refusal = imatrix_refusal(ft.name, types, set(imat) if imat else None)
        if refusal:
            raise ConvertError(refusal)
        _check_kernels(set(types.values()) - {t.dtype for t in ordered}, backend)
        gw, data_bytes = _prepare_writer(source, ordered, types, ft.ftype)
        _check_space(out, data_bytes)
        try:
            # NAME.part is journaled and locked while written: a kill -9 leaves a .part that
            # the next start removes (core/output_files.py); leaving this block removes it.
            with PartFile(out) as part:
                _write(gw, part.path, ordered, types, backend=backend, threads=threads, imat=imat,
                       progress=progress, cancel=cancel, start=start)
                _verify(part.path, ordered, types)
                if out.exists() and not overwrite:
                    raise ConvertError(f"{out} appeared while writing; not replacing it")
                part.commit()
        except PartBusy as exc:
            gw.close()
            raise ConvertError(str(exc)) from None
        except OSError as exc:   # the rename (out turned into a folder meanwhile, ...)
            gw.close()
            raise ConvertError(_io_message(exc, out)) from None
        except BaseException:
            gw.close()
            raise
    finally:
        source.close()
    return QuantizeResult(path=out, file_type=ft.name, tensor_types=types,
                          size_bytes=out.stat().st_size, source_bytes=source.source_bytes,
                          seconds=time.monotonic() - start)


def _check_kernels(needed: set[str], backend: str) -> None:
    from quantdesk.kernels import registry
    be = ("cuda" if kernels.cuda_usable() else "cpu") if backend == "auto" else backend
    for q in sorted(needed - {"F32", "F16", "BF16"}):
        try:
            registry.get_kernel(q, be)
        except ValueError:
            raise ConvertError(f"this build has no {be} kernel for {q} yet; "
                               "choose another type or backend") from None


def _prepare_writer(source: Source, ordered, types: dict[str, str], ftype: int):
    import gguf
    gw = gguf.GGUFWriter(path=None, arch=source.params.arch)
    source.write_metadata(gw)  # may raise ConvertError (tokenizer etc.) before any file exists
    gw.add_quantization_version(QUANTIZATION_VERSION)
    gw.add_file_type(ftype)
    total = 0
    for t in ordered:
        q = types[t.name]
        nbytes = tensor_bytes(q, t.shape)
        gw.add_tensor_info(t.name, t.shape, np.dtype(np.float32), nbytes,
                           raw_dtype=gguf.GGMLQuantizationType[q])
        total += nbytes
    return gw, total


def _check_space(out: Path, data_bytes: int) -> None:
    """Fail before writing when the tensor data alone cannot fit (the common full-disk case)."""
    import shutil
    from quantdesk.core.units import human_bytes
    free = shutil.disk_usage(out.parent).free
    if data_bytes > free:
        raise ConvertError(f"not enough disk space: {out.name} needs about "
                           f"{human_bytes(data_bytes)} but {out.parent} has {human_bytes(free)} free")


def _write(gw, part: Path, ordered, types, *, backend, threads, imat, progress, cancel,
           start) -> None:
    try:
        # gguf-py writes the header, metadata and tensor table, then closes its file; the tensor
        # data is ours to stream in row chunks (gguf-py's writes take whole tensors).
        gw.write_header_to_file(path=part)
        gw.write_kv_data_to_file()
        gw.write_ti_data_to_file()
        gw.close()
        with open(part, "r+b") as f:
            f.seek(0, os.SEEK_END)
            _write_data(f, ordered, types, backend=backend, threads=threads, imat=imat,
                        progress=progress, cancel=cancel, start=start)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise ConvertError(_io_message(exc, part.with_suffix(""))) from None


def _write_data(f, ordered, types, *, backend, threads, imat, progress, cancel, start) -> None:
    """Every tensor's data in table order, each at GGUF's 32-byte alignment."""
    total = sum(t.nbytes for t in ordered) or 1
    done = 0
    for index, t in enumerate(ordered, 1):
        q = types[t.name]
        _pad(f)
        ncols = t.shape[-1]
        n_rows = int(np.prod(t.shape[:-1], dtype=np.int64)) if len(t.shape) > 1 else 1
        if q == t.dtype and t.raw is not None:  # same type: copy the stored bytes
            _check_cancel(cancel)
            write_bytes(f, t.raw())
            done += t.nbytes
        else:
            step = max(1, CHUNK_BYTES // (4 * ncols)) if t.load_rows is not None else n_rows
            im = imat.get(t.name) if imat else None
            for r0 in range(0, n_rows, step):
                _check_cancel(cancel)
                r1 = min(n_rows, r0 + step)
                rows = (t.load_rows(r0, r1) if t.load_rows is not None
                        else np.ascontiguousarray(t.load(), dtype=np.float32).reshape(n_rows, ncols))
                for a, b, im_part in _imatrix_parts(im, t.shape, r0, r1):
                    write_bytes(f, _convert(rows[a - r0:b - r0], q, t.name, backend, threads, im_part))
                done += t.nbytes * (r1 - r0) // n_rows
                if progress is not None and r1 < n_rows:
                    progress(Progress(done, total, t.name, index, len(ordered),
                                      time.monotonic() - start))
        _pad(f)
        if progress is not None:
            progress(Progress(done, total, t.name, index, len(ordered), time.monotonic() - start))


def _imatrix_parts(im, shape, r0: int, r1: int):
    """Rows r0:r1 of a tensor seen as 2-D, cut where its imatrix changes: a 3-D expert tensor
    (n_expert, rows, cols) has one imatrix row per expert (llama-imatrix's per-expert sums), and
    llama.cpp quantizes each expert with its own (llama-quant.cpp: imatrix + i03 * n_per_row)."""
    cols = shape[-1]
    n_mat = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
    if im is None or n_mat == 1 or im.shape != (n_mat * cols,):
        yield r0, r1, im
        return
    rows = shape[-2]
    for e in range(r0 // rows, (r1 - 1) // rows + 1):
        a, b = max(r0, e * rows), min(r1, (e + 1) * rows)
        yield a, b, im[e * cols:(e + 1) * cols]


def _convert(rows: np.ndarray, q: str, name: str, backend, threads, im) -> np.ndarray:
    if im is not None and im.shape != (rows.shape[1],):
        im = None  # llama.cpp ignores a mis-sized entry for the embeddings; we do for all
    try:
        return kernels.quantize(np.ascontiguousarray(rows, dtype=np.float32), q,
                                backend=backend, imatrix=im, threads=threads)
    except ValueError as exc:
        if "NaN" in str(exc):
            raise ConvertError(f"tensor {name} contains NaN or Inf values; the weights are damaged") from None
        raise ConvertError(f"tensor {name}: {exc}") from None


def _check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("quantization cancelled")


def _verify(part: Path, ordered, types) -> None:
    """Re-read the finished file: full GGUF validation, then its tensor table against the plan."""
    from quantdesk.core.gguf import check_file as read_part
    from quantdesk.core.gguf import GGUFError, inspect_gguf
    try:
        checked = read_part(part)
        if checked.metadata.get("general.architecture") != "clip":   # an mmproj is no model
            inspect_gguf(part)
        got = {t.name: t.type_name for t in checked.tensors}
    except GGUFError as exc:
        raise ConvertError(f"the written file failed validation: {exc}") from None
    if got != {t.name: types[t.name] for t in ordered}:
        raise ConvertError("the written file's tensor table does not match what was planned")


def _load_imatrix(imatrix) -> dict[str, np.ndarray] | None:
    if imatrix is None or isinstance(imatrix, dict):
        return imatrix
    from quantdesk.core.imatrix import ImatrixError, load_imatrix
    try:
        return load_imatrix(Path(imatrix))
    except ImatrixError as exc:
        raise ConvertError(str(exc)) from None
