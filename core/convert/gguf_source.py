"""A GGUF file (or a split model's parts) as a quantizer `Source`: its metadata copied, its tensors
read through gguf-py's memory-mapped reader (one tensor paged in at a time).

Tensors already quantized are refused unless the caller allows re-quantization: quantizing a
quantized model compounds the error, and llama.cpp refuses it by default too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import AlreadyQuantized, ConvertError
from .source import ModelParams, Source, SourceTensor

_FLOAT = ("F32", "F16", "BF16")
# Keys the quantizer sets itself, or that describe the input's layout rather than the model.
_SKIP_KEYS = ("general.architecture", "general.file_type", "general.quantization_version",
              "split.no", "split.count", "split.tensors.count", "general.alignment")


def open_gguf(path: Path, *, allow_requantize: bool = False) -> Source:
    from quantdesk.core.gguf import GGUFError, MappedGGUF, inspect_gguf, metadata_count
    path = Path(path)
    try:  # full validation first: a damaged file gets the inspector's one-line reason
        info = inspect_gguf(path)
    except GGUFError as exc:
        raise ConvertError(str(exc)) from None
    # a split model (NAME-00001-of-0000N.gguf, any part given): the parts were all validated and
    # matched above; the model's keys are in the first, its tensors spread over all of them
    readers = []
    for part in info.files:
        try:
            readers.append(MappedGGUF(part))
        except (OSError, ValueError) as exc:
            raise ConvertError(f"{part.name} is not a readable GGUF file: {exc}") from None
    reader = readers[0]
    path = info.path
    field = reader.value

    arch = field("general.architecture")
    if not arch:
        raise ConvertError(f"{path.name} names no architecture")
    # counts as the planner reads them: NaN, strings or per-layer lists are no crash here either
    n_head = metadata_count(field(f"{arch}.attention.head_count", 0))
    n_head_kv = metadata_count(field(f"{arch}.attention.head_count_kv", n_head), n_head) or n_head
    params = ModelParams(arch=arch, n_layer=metadata_count(field(f"{arch}.block_count", 0)),
                         n_head=n_head, n_head_kv=n_head_kv,
                         n_expert=metadata_count(field(f"{arch}.expert_count", 0)))

    tensors: list[SourceTensor] = []
    quantized = []
    for reader_t, t in ((r, t) for r in readers for t in r.tensors):
        dtype = t.tensor_type.name
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))  # ggml ne → numpy order
        if dtype not in _FLOAT:
            quantized.append(dtype)
        tensors.append(SourceTensor(name=t.name, shape=shape, dtype=dtype, nbytes=int(t.n_bytes),
                                    load=lambda t=t, s=shape: _to_f32(t, s),
                                    load_rows=(lambda r0, r1, t=t, s=shape, m=reader_t: _rows_f32(t, s, r0, r1, m))
                                    if dtype in _FLOAT and len(shape) >= 2 else None,
                                    raw=lambda t=t: np.asarray(t.data).view(np.uint8).reshape(-1)))
    if quantized and not allow_requantize:
        from collections import Counter
        main_type = Counter(quantized).most_common(1)[0][0]  # the file's type, not token_embd's
        raise AlreadyQuantized(f"{path.name} is already quantized ({main_type}); re-quantizing "
                               "compounds the error — start from an F32/F16/BF16 model or allow "
                               "re-quantization explicitly", main_type)

    def write_metadata(gw: Any) -> None:
        for key, value, vtype, sub in reader.metadata_entries():
            if key not in _SKIP_KEYS:
                gw.add_key_value(key, value, vtype, sub_type=sub)

    name = str(field("general.name") or info.name)
    return Source(path=path, name=name, params=params, tensors=tensors,
                  write_metadata=write_metadata, source_bytes=sum(t.nbytes for t in tensors))


def _to_f32(t: Any, shape: tuple[int, ...]) -> np.ndarray:
    from gguf.quants import dequantize
    data = np.asarray(t.data)
    kind = t.tensor_type.name
    if kind == "F32":
        return np.array(data, dtype=np.float32).reshape(shape)
    if kind == "F16":
        return data.astype(np.float32).reshape(shape)
    if kind == "BF16":
        return (data.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.asarray(dequantize(data, t.tensor_type), dtype=np.float32).reshape(shape)


def _rows_f32(t: Any, shape: tuple[int, ...], r0: int, r1: int, reader: Any) -> np.ndarray:
    data = np.asarray(t.data)
    if t.tensor_type.name == "BF16":
        rows = data.view(np.uint16).reshape(-1, shape[-1])[r0:r1]
        out = (rows.astype(np.uint32) << 16).view(np.float32)
    else:
        out = np.array(data.reshape(-1, shape[-1])[r0:r1], dtype=np.float32)  # always a copy
    row_bytes = t.n_bytes // max(1, int(np.prod(shape[:-1], dtype=np.int64)))
    reader.release_pages(t.data_offset + r0 * row_bytes, t.data_offset + r1 * row_bytes)
    return out
