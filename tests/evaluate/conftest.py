"""Fixtures for quality-report and imatrix tests: an F32 SmolLM2 reference and llama.cpp quants.

The reference is the starter model (Q4_1) dequantized to F32 by our own pipeline; quants are made
from it by llama.cpp itself (llama_model_quantize), optionally with an importance matrix handed
over through llama_model_quantize_params.imatrix — so llama.cpp's quantizer is the judge of
whether our imatrix is usable.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def _quantdesk_home(tmp_path_factory):
    """Logs and caches of these tests go to a throw-away folder, never the user's."""
    old = os.environ.get("QUANTDESK_HOME")
    os.environ["QUANTDESK_HOME"] = str(tmp_path_factory.mktemp("qd-home"))
    yield
    if old is None:
        os.environ.pop("QUANTDESK_HOME", None)
    else:
        os.environ["QUANTDESK_HOME"] = old


@pytest.fixture(scope="session")
def heldout_text() -> str:
    return (DATA / "heldout_en.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def calibration_text() -> str:
    return (ROOT / "resources" / "calibration" / "sample_en.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality")


@pytest.fixture(scope="session")
def f32_reference(starter_model, work_dir) -> Path:
    from quantdesk.core.quantize import quantize_model
    out = work_dir / "smollm2-135m-F32.gguf"
    quantize_model(starter_model, out, "F32", allow_requantize=True)
    return out


def llama_quantize(src: Path, dst: Path, ftype: str, imatrix: dict[str, np.ndarray] | None = None,
                   threads: int = 2) -> Path:
    """Quantize with llama.cpp's own llama_model_quantize (imatrix passed as its C array)."""
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.nthread = threads
    keep = []
    if imatrix:
        entries = (llama_cpp.llama_model_imatrix_data * (len(imatrix) + 1))()
        for i, (name, values) in enumerate(imatrix.items()):
            arr = np.ascontiguousarray(values, dtype=np.float32)
            keep.append(arr)
            entries[i].name = name.encode()
            entries[i].data = arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            entries[i].size = arr.size
        entries[len(imatrix)].name = None            # the array's terminator
        params.imatrix = entries
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    assert rc == 0, f"llama_model_quantize failed for {ftype}"
    return dst


@pytest.fixture(scope="session")
def make_quant(f32_reference, work_dir):
    made: dict[tuple, Path] = {}

    def make(ftype: str, imatrix_path: Path | None = None) -> Path:
        key = (ftype, str(imatrix_path))
        if key not in made:
            imx = None
            if imatrix_path is not None:
                from quantdesk.core.imatrix import load_imatrix
                imx = load_imatrix(imatrix_path)
            suffix = "-imx" if imatrix_path else ""
            made[key] = llama_quantize(f32_reference, work_dir / f"smollm2-{ftype}{suffix}.gguf",
                                       ftype, imx)
        return made[key]
    return make
