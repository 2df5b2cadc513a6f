"""Fixtures for conversion/quantization tests: tiny HF checkpoints built here, their F32 GGUFs,
and llama.cpp's own quantizer as the reference."""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from .tiny_llama import build_tiny_llama

# Two shapes: (a) untied output, 4 layers, all rows multiples of 256; (b) tied embeddings,
# 9 layers and ffn rows of 320, so the fallbacks (row length not a multiple of 256) are exercised.
VARIANTS = {
    "a": dict(n_layer=4, n_ff=512, tied=False),
    "b": dict(n_layer=9, n_ff=320, tied=True, seed=1),
}


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory):
    """Variant (a) as an HF folder with BF16 weights; returns (folder, stored weights)."""
    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    weights = build_tiny_llama(folder, **VARIANTS["a"])
    return folder, weights


@pytest.fixture(scope="session")
def tiny_f32(tmp_path_factory):
    """Our F32 GGUF of each variant, converted from its HF folder: {"a": path, "b": path}."""
    from quantdesk.core.quantize import quantize_model
    out = {}
    for name, kw in VARIANTS.items():
        base = tmp_path_factory.mktemp(f"tiny-{name}")
        build_tiny_llama(base / "hf", **kw)
        out[name] = quantize_model(base / "hf", base / f"tiny-{name}-f32.gguf", "F32").path
    return out


def llama_cpp_quantize(src: Path, dst: Path, ftype: int, threads: int = 2,
                       imatrix: dict | None = None, overrides: dict | None = None) -> Path:
    """llama.cpp's llama_model_quantize, the reference route; `imatrix`: {tensor name: float32
    importances} handed over as llama_model_imatrix_data; `overrides`: {regex: GGML type name},
    llama-quantize's --tensor-type."""
    import llama_cpp
    import numpy as np
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    keep = []
    if imatrix is not None:
        entries = (llama_cpp.llama_model_imatrix_data * (len(imatrix) + 1))()
        for i, (name, v) in enumerate(imatrix.items()):
            arr = np.ascontiguousarray(v, dtype=np.float32)
            keep.append(arr)
            entries[i].name = name.encode()
            entries[i].data = arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            entries[i].size = arr.size
        entries[len(imatrix)].name = None
        params.imatrix = ctypes.cast(entries, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    if overrides:
        from gguf import GGMLQuantizationType
        tt = (llama_cpp.llama_model_tensor_override * (len(overrides) + 1))()
        for i, (pattern, qtype) in enumerate(overrides.items()):
            keep.append(pattern.encode())
            tt[i].pattern, tt[i].type = keep[-1], int(GGMLQuantizationType[qtype])
        tt[len(overrides)].pattern = None
        params.tt_overrides = ctypes.cast(tt, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    assert rc == 0, f"llama_model_quantize failed for {src}"
    return dst


def imatrix_values(tensors, seed: int = 7) -> dict:
    """Seeded importances for every 2-D tensor but token_embd (what llama.cpp looks up)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return {t.name: rng.uniform(0.1, 4.0, t.shape[-1]).astype(np.float32)
            for t in tensors if len(t.shape) == 2 and t.name != "token_embd.weight"}


def write_imatrix(path: Path, values: dict) -> Path:
    """An imatrix in llama-imatrix's GGUF form (NAME.in_sum2 sums, NAME.counts), by our writer."""
    import numpy as np
    from quantdesk.core.imatrix import Imatrix, save_imatrix
    # a power of two as the count, so sums / counts gives back exactly v
    entries = {name: ((v * 4.0).reshape(1, -1).astype(np.float32), np.array([4.0], np.float32))
               for name, v in values.items()}
    save_imatrix(path, Imatrix(entries, chunk_count=1, chunk_size=1))
    return path


def gguf_tensors(path: Path) -> dict[str, tuple[str, bytes]]:
    from gguf import GGUFReader
    return {t.name: (t.tensor_type.name, t.data.tobytes()) for t in GGUFReader(path).tensors}
