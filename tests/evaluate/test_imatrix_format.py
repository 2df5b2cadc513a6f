"""Imatrix files: our GGUF writer read by ggml's own GGUF parser, the legacy .dat form, bad input."""
from __future__ import annotations

import ctypes
import pathlib
import struct

import numpy as np
import pytest

from quantdesk.core.imatrix import Imatrix, ImatrixError, load_imatrix, read_imatrix, save_imatrix


def _sample() -> Imatrix:
    rng = np.random.default_rng(3)
    return Imatrix(
        entries={
            "blk.0.attn_q.weight": (rng.random((1, 64), dtype=np.float32) * 50,
                                    np.array([40.0], dtype=np.float32)),
            # a 3-D (expert) weight: one row of sums and one count per matrix; one saw no token
            "blk.0.ffn_down_exps.weight": (rng.random((3, 32), dtype=np.float32),
                                           np.array([5.0, 0.0, 2.0], dtype=np.float32)),
        },
        chunk_count=2, chunk_size=20, datasets=["calibration.txt"])


class _GGUFInitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


def _ggml_gguf():
    import llama_cpp
    from llama_cpp._ctypes_extensions import load_shared_library
    lib = load_shared_library("ggml-base", pathlib.Path(llama_cpp.__file__).parent / "lib")
    sig = {
        "gguf_init_from_file": ([ctypes.c_char_p, _GGUFInitParams], ctypes.c_void_p),
        "gguf_free": ([ctypes.c_void_p], None),
        "gguf_find_key": ([ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int64),
        "gguf_get_val_str": ([ctypes.c_void_p, ctypes.c_int64], ctypes.c_char_p),
        "gguf_get_val_u32": ([ctypes.c_void_p, ctypes.c_int64], ctypes.c_uint32),
        "gguf_get_arr_n": ([ctypes.c_void_p, ctypes.c_int64], ctypes.c_size_t),
        "gguf_get_arr_str": ([ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t], ctypes.c_char_p),
        "gguf_get_n_tensors": ([ctypes.c_void_p], ctypes.c_int64),
        "gguf_get_tensor_name": ([ctypes.c_void_p, ctypes.c_int64], ctypes.c_char_p),
        "gguf_get_tensor_type": ([ctypes.c_void_p, ctypes.c_int64], ctypes.c_int),
        "gguf_get_tensor_size": ([ctypes.c_void_p, ctypes.c_int64], ctypes.c_size_t),
        "gguf_get_tensor_offset": ([ctypes.c_void_p, ctypes.c_int64], ctypes.c_size_t),
        "gguf_get_data_offset": ([ctypes.c_void_p], ctypes.c_size_t),
    }
    for name, (args, res) in sig.items():
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = res
    return lib


def test_gguf_written_is_read_by_ggml_as_llama_imatrix_writes_it(tmp_path):
    imx = _sample()
    path = save_imatrix(tmp_path / "imatrix.gguf", imx)
    lib = _ggml_gguf()
    ctx = lib.gguf_init_from_file(str(path).encode(), _GGUFInitParams(True, None))
    assert ctx, "ggml's GGUF parser rejected the file"
    try:
        assert lib.gguf_get_val_str(ctx, lib.gguf_find_key(ctx, b"general.type")) == b"imatrix"
        assert lib.gguf_find_key(ctx, b"general.architecture") == -1
        assert lib.gguf_get_val_u32(ctx, lib.gguf_find_key(ctx, b"imatrix.chunk_count")) == 2
        assert lib.gguf_get_val_u32(ctx, lib.gguf_find_key(ctx, b"imatrix.chunk_size")) == 20
        ds = lib.gguf_find_key(ctx, b"imatrix.datasets")
        assert lib.gguf_get_arr_n(ctx, ds) == 1
        assert lib.gguf_get_arr_str(ctx, ds, 0) == b"calibration.txt"
        raw = path.read_bytes()
        base = lib.gguf_get_data_offset(ctx)
        found = {}
        for i in range(lib.gguf_get_n_tensors(ctx)):
            assert lib.gguf_get_tensor_type(ctx, i) == 0          # GGML_TYPE_F32
            off = base + lib.gguf_get_tensor_offset(ctx, i)
            n = lib.gguf_get_tensor_size(ctx, i) // 4
            found[lib.gguf_get_tensor_name(ctx, i).decode()] = np.frombuffer(raw, "<f4", n, off)
    finally:
        lib.gguf_free(ctx)
    assert sorted(found) == sorted(f"{n}.{k}" for n in imx.entries for k in ("in_sum2", "counts"))
    for name, (sums, counts) in imx.entries.items():
        np.testing.assert_array_equal(found[f"{name}.in_sum2"], sums.reshape(-1))
        np.testing.assert_array_equal(found[f"{name}.counts"], counts)


def test_means_follow_llama_quantize(tmp_path):
    imx = _sample()
    save_imatrix(tmp_path / "m.gguf", imx)
    back = read_imatrix(tmp_path / "m.gguf")
    assert back.chunk_count == 2 and back.chunk_size == 20 and back.datasets == ["calibration.txt"]
    means = load_imatrix(tmp_path / "m.gguf")
    sums, counts = imx.entries["blk.0.attn_q.weight"]
    np.testing.assert_allclose(means["blk.0.attn_q.weight"], sums[0] / 40.0, rtol=1e-6)
    exps = means["blk.0.ffn_down_exps.weight"].reshape(3, 32)
    sums, counts = imx.entries["blk.0.ffn_down_exps.weight"]
    np.testing.assert_allclose(exps[0], sums[0] / 5.0, rtol=1e-6)
    assert np.all(exps[1] == 1.0)                  # no token: neutral weights, as llama-quantize
    np.testing.assert_allclose(exps[2], sums[2] / 2.0, rtol=1e-6)


def test_legacy_dat_is_read(tmp_path):
    # llama-imatrix --output-format dat: n_entries, then per entry name, ncall, nval, mean*ncall.
    values = np.arange(1, 9, dtype=np.float32)
    name = b"blk.3.ffn_up.weight"
    raw = struct.pack("<i", 1) + struct.pack("<i", len(name)) + name
    raw += struct.pack("<ii", 4, len(values)) + (values * 4).tobytes()
    raw += struct.pack("<i", 7) + struct.pack("<i", 8) + b"wiki.txt"
    (tmp_path / "old.dat").write_bytes(raw)
    np.testing.assert_allclose(load_imatrix(tmp_path / "old.dat")["blk.3.ffn_up.weight"], values)
    assert read_imatrix(tmp_path / "old.dat").datasets == ["wiki.txt"]


def test_bad_files_get_one_line_messages(tmp_path, starter_model):
    with pytest.raises(ImatrixError, match="does not exist"):
        load_imatrix(tmp_path / "missing.gguf")
    with pytest.raises(ImatrixError, match="not an imatrix file"):
        load_imatrix(starter_model)
    good = save_imatrix(tmp_path / "ok.gguf", _sample()).read_bytes()
    (tmp_path / "cut.gguf").write_bytes(good[:len(good) // 2])
    with pytest.raises(ImatrixError) as err:
        load_imatrix(tmp_path / "cut.gguf")
    assert "\n" not in str(err.value)
    (tmp_path / "junk.dat").write_bytes(b"\x00" * 3)
    with pytest.raises(ImatrixError):
        load_imatrix(tmp_path / "junk.dat")


def test_existing_output_is_replaced_atomically(tmp_path):
    path = tmp_path / "x.gguf"
    save_imatrix(path, _sample())
    save_imatrix(path, _sample())
    assert not (tmp_path / "x.gguf.part").exists() and load_imatrix(path)
