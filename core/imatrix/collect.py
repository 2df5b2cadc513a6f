"""Collect importance-matrix statistics through llama.cpp's graph evaluation callback (`cb_eval`).

Why the callback and not our own numpy forward pass: the callback sees the very activations
llama.cpp computes for the model — every architecture it runs, its RoPE/norm/attention variants
and the exact input of each matrix multiplication — so the result is what `llama-imatrix` itself
collects, with no second implementation of each architecture to keep right.

Like llama-imatrix: GGML_OP_MUL_MAT nodes whose weight is a `blk.*` tensor (and `output.weight`
on request), with float32 inputs of at least 16 rows; per tensor the sum over tokens of x_j^2 for
each input column j, and the number of tokens. Mixture-of-experts layers multiply their stacked
3-D expert tensors (`ffn_*_exps`) with GGML_OP_MUL_MAT_ID: each token's input goes to the experts
its router picked (the ids, src[2]), so each expert has its own row of sums and its own count of
tokens, as llama-imatrix stores them. Runs inside the evaluation child process (it reads ggml
tensors through ctypes).
"""
from __future__ import annotations

import ctypes

import numpy as np

GGML_MAX_DIMS = 4
GGML_MAX_SRC = 10
GGML_MAX_NAME = 64
GGML_TYPE_F32 = 0
GGML_TYPE_I32 = 26


class GGMLTensor(ctypes.Structure):
    """Prefix of ggml.h's `struct ggml_tensor` (layout checked against ggml_get_name at first use)."""
    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * GGML_MAX_DIMS),
        ("nb", ctypes.c_size_t * GGML_MAX_DIMS),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * GGML_MAX_SRC),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * GGML_MAX_NAME),
    ]


def _ggml_base():
    import pathlib

    import llama_cpp
    from llama_cpp._ctypes_extensions import load_shared_library
    lib = load_shared_library("ggml-base", pathlib.Path(llama_cpp.__file__).parent / "lib")
    lib.ggml_op_name.argtypes = [ctypes.c_int]
    lib.ggml_op_name.restype = ctypes.c_char_p
    lib.ggml_get_name.argtypes = [ctypes.c_void_p]
    lib.ggml_get_name.restype = ctypes.c_char_p
    lib.ggml_backend_buffer_is_host.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_buffer_is_host.restype = ctypes.c_bool
    lib.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                            ctypes.c_size_t]
    lib.ggml_backend_tensor_get.restype = None
    return lib


def weight_name(raw: str) -> str:
    """'CUDA0#blk.0.attn_k.weight#0' -> 'blk.0.attn_k.weight' (llama-imatrix's filter_tensor_name)."""
    if "#" in raw:
        raw = raw.split("#")[1]
    return raw


class Collector:
    def __init__(self, process_output: bool = False, min_rows: int = 16):
        self.lib = _ggml_base()
        self.process_output = process_output
        self.min_rows = min_rows
        self.sums: dict[str, np.ndarray] = {}      # float64 accumulators, one row per matrix
        self.counts: dict[str, np.ndarray] = {}    # tokens seen, one per matrix (expert)
        self._ops: dict[int, str] = {}
        self._checked = False
        self._error: BaseException | None = None

    def _op(self, op: int) -> str:
        name = self._ops.get(op)
        if name is None:
            name = self._ops[op] = (self.lib.ggml_op_name(op) or b"").decode()
        return name

    def _tensor(self, ptr: int) -> GGMLTensor:
        t = GGMLTensor.from_address(ptr)
        if not self._checked:
            # A wrong struct layout would read garbage: compare with the library's own accessor.
            if self.lib.ggml_get_name(ptr) != t.name:
                raise RuntimeError("this llama.cpp build has an unexpected ggml_tensor layout")
            self._checked = True
        return t

    def callback(self, t_ptr, ask, _user) -> bool:
        # Exceptions must not cross the C boundary: remember the first one, stop collecting.
        if self._error is not None:
            return not ask
        try:
            return self._callback(t_ptr, ask)
        except BaseException as exc:  # noqa: BLE001 - re-raised by raise_error()
            self._error = exc
            return not ask

    def raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"importance-matrix collection failed: {self._error}")

    def _wanted(self, t: GGMLTensor) -> tuple[str, GGMLTensor] | None:
        op = self._op(t.op)
        if op not in ("MUL_MAT", "MUL_MAT_ID") or not t.src[0] or not t.src[1]:
            return None
        src0, src1 = self._tensor(t.src[0]), self._tensor(t.src[1])
        if op == "MUL_MAT_ID":   # llama-imatrix takes every routed product, however few tokens
            if not t.src[2] or src1.type != GGML_TYPE_F32:
                return None
        elif src1.ne[1] < self.min_rows or src1.type != GGML_TYPE_F32:
            return None
        name = weight_name(src0.name.decode("utf-8", "replace"))
        if not (name.startswith("blk.") or (self.process_output and name == "output.weight")):
            return None
        return name, src0

    def _callback(self, t_ptr, ask) -> bool:
        t = self._tensor(t_ptr)
        wanted = self._wanted(t)
        if ask:
            return wanted is not None
        if wanted is None:
            return True
        name, src0 = wanted
        src1 = self._tensor(t.src[1])
        x = self._read(src1)                                   # (ne3, ne2, ne1, ne0)
        n_mat = int(src0.ne[2] * src0.ne[3])
        acc = self._accumulator(name, n_mat, int(src1.ne[0]))
        if self._op(t.op) == "MUL_MAT_ID":
            self._add_routed(name, acc, x, self._tensor(t.src[2]))
            return True
        sq = np.square(x, dtype=np.float64)
        # Activations of a 3-D/4-D weight go to the matrix they multiply (broadcast as ggml does).
        for i3 in range(x.shape[0]):
            for i2 in range(x.shape[1]):
                mat = (i3 % int(src0.ne[3])) * int(src0.ne[2]) + (i2 % int(src0.ne[2]))
                acc[mat] += sq[i3, i2].sum(axis=0)
        self.counts[name] += int(np.prod(x.shape[:3])) // n_mat
        return True

    def _accumulator(self, name: str, n_mat: int, cols: int) -> np.ndarray:
        acc = self.sums.get(name)
        if acc is None:
            acc = self.sums[name] = np.zeros((n_mat, cols), dtype=np.float64)
            self.counts[name] = np.zeros(n_mat, dtype=np.int64)
        elif acc.shape != (n_mat, cols):
            raise RuntimeError(f"inconsistent input size for {name}")
        return acc

    def _add_routed(self, name: str, acc: np.ndarray, x: np.ndarray, ids_t: GGMLTensor) -> None:
        """MUL_MAT_ID: x is (1, n_tokens, n_used or 1, cols); ids (n_tokens, n_used) name the
        expert each (token, slot) went to. Each input row is added to that expert's sums."""
        if ids_t.type != GGML_TYPE_I32:
            raise RuntimeError(f"routing ids of {name} are not int32")
        ids = self._read(ids_t, np.int32)[0, 0]                # (n_tokens, n_used)
        if x.shape[0] != 1 or ids.shape[0] != x.shape[1]:
            raise RuntimeError(f"unexpected routed input shape for {name}")
        n_as = acc.shape[0]
        if ids.size and (ids.min() < 0 or ids.max() >= n_as):
            raise RuntimeError(f"routing id out of range for {name}")
        slot = np.arange(ids.shape[1]) % x.shape[2]             # src1 broadcast over the slots
        rows = np.square(x[0][:, slot, :], dtype=np.float64)    # (n_tokens, n_used, cols)
        np.add.at(acc, ids.reshape(-1), rows.reshape(-1, acc.shape[1]))
        self.counts[name] += np.bincount(ids.reshape(-1), minlength=n_as)

    def _read(self, t: GGMLTensor, dtype=np.float32) -> np.ndarray:
        ne = [int(v) for v in t.ne]
        nb = [int(v) for v in t.nb]
        if nb[0] != 4:
            raise RuntimeError("non-contiguous matmul input rows")
        shape = (ne[3], ne[2], ne[1], ne[0])
        strides = (nb[3], nb[2], nb[1], nb[0])
        extent = sum((n - 1) * s for n, s in zip(shape, strides)) + 4
        if t.buffer and not self.lib.ggml_backend_buffer_is_host(t.buffer):
            buf = np.empty(extent, dtype=np.uint8)       # device memory: copy the span out
            self.lib.ggml_backend_tensor_get(ctypes.addressof(t), buf.ctypes.data, 0, extent)
            base = buf
        else:
            base = np.ctypeslib.as_array((ctypes.c_uint8 * extent).from_address(t.data))
        return np.ndarray(shape, dtype=dtype, buffer=base, strides=strides)

    def entries(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """name -> (in_sum2 float32 (n_mat, cols), counts float32 (n_mat,))."""
        out = {}
        for name, acc in self.sums.items():
            out[name] = (acc.astype(np.float32), self.counts[name].astype(np.float32))
        return out
