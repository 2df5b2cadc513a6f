"""A checkpoint seen through its dequantizer: each quantized layer is one float32 `weight` tensor.

DequantCheckpoint has the reading surface of SafetensorsCheckpoint (refs, names, load, read_rows),
so tensor_plan maps, stacks experts and streams rows exactly as for a bf16 checkpoint. Rows of
an fp8 weight are rows of the file; rows of a GPTQ/AWQ weight are *columns* of the packed words,
read in blocks of bounded size (the packed layer is 1/8 of its float32 form); the small tensors
(scales, zeros, g_idx) are read whole per chunk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from quantdesk.core.text import shown

from ..errors import ConvertError
from . import awq, fp8, gptq

_FLOATS = ("F32", "F16", "BF16")
_BLOCK_BYTES = 8 * 1024 * 1024           # packed words read per pass when gathering columns
# fp8 companions that only serve inference (activation scales): dropped like llama.cpp does
_FP8_UNUSED = (".activation_scale", "_activation_scale", ".input_scale", ".qscale_act")


@dataclass(frozen=True)
class Settings:
    bits: int = 4
    zero_plus_one: bool = False                 # GPTQ v1 stores zero - 1
    block: tuple[int, int] | None = None        # fp8 weight_block_size


def settings(method: str, q: dict) -> Settings:
    if method == "compressed-tensors":
        return _compressed_fp8(q)
    if method == "fp8":
        fmt = str(q.get("fmt") or "e4m3").lower()
        if fmt != "e4m3":
            raise ConvertError(f"fp8 format {shown(fmt)} is not supported (only e4m3)")
        block = q.get("weight_block_size")
        if block is None:
            return Settings()
        if (not isinstance(block, list) or len(block) != 2
                or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in block)):
            raise ConvertError(f"fp8 weight_block_size {shown(str(block))} is not two positive integers")
        return Settings(block=(block[0], block[1]))
    bits = q.get("bits", q.get("w_bit", 4))
    if method == "awq":
        version = str(q.get("version") or "gemm").lower()
        if version != "gemm":
            raise ConvertError(f"AWQ version {shown(version)} is not supported (only the GEMM format)")
        if bits != 4:
            raise ConvertError(f"AWQ with {shown(str(bits))} bits is not supported (only 4)")
        return Settings()
    fmt = str(q.get("checkpoint_format") or "gptq").lower()
    if fmt not in ("gptq", "gptq_v2"):
        raise ConvertError(f"GPTQ checkpoint format {shown(fmt)} is not supported (gptq, gptq_v2)")
    if bits not in gptq.BITS:
        raise ConvertError(f"GPTQ with {shown(str(bits))} bits is not supported (2, 4 or 8)")
    return Settings(bits=bits, zero_plus_one=fmt == "gptq")


def _compressed_fp8(q: dict) -> Settings:
    """llm-compressor's FP8 (`format: float-quantized`): e4m3 weights with `weight_scale` per
    tensor, per output channel or per block (`block_structure`); its int formats are refused."""
    fmt = q.get("format")
    groups = q.get("config_groups")
    if fmt != "float-quantized":
        raise ConvertError(f"compressed-tensors format {shown(str(fmt))} is not supported (only "
                           "float-quantized, its FP8)")
    if not isinstance(groups, dict) or len(groups) != 1 or not isinstance(next(iter(groups.values())), dict):
        raise ConvertError("compressed-tensors with several config_groups is not supported")
    weights = next(iter(groups.values())).get("weights") or {}
    if weights.get("type") != "float" or weights.get("num_bits") != 8:
        raise ConvertError("compressed-tensors weights other than 8-bit float are not supported")
    block = weights.get("block_structure")
    if block is None:
        return Settings()
    return settings("fp8", {"weight_block_size": block})


@dataclass(frozen=True)
class LogicalRef:
    """A dequantized tensor as tensor_plan sees it (float32 rows; bytes = what is read)."""
    name: str
    shape: tuple[int, int]
    nbytes: int
    dtype: str = "F32"


class DequantCheckpoint:
    def __init__(self, ckpt, method: str, q: dict):
        self.ckpt, self.method, self.cfg = ckpt, method, settings(method, q)
        self.refs: dict = {}
        self._rows: dict[str, Callable[[int, int], np.ndarray]] = {}
        build = self._fp8 if method in ("fp8", "compressed-tensors") else self._packed
        used: set[str] = set()
        for name, ref in ckpt.refs.items():
            if name in used or name.endswith(_FP8_UNUSED):
                continue
            made = build(name, ref, used)
            if made is None:
                self.refs[name] = ref
        for name in used:          # a companion listed before its weight was kept: drop it
            if name in self.refs and name not in self._rows:
                del self.refs[name]
        if not self._rows:
            raise ConvertError(f"quantization_config says {method} but no tensor is stored that way")

    # --- the reading surface of SafetensorsCheckpoint ----------------------------------------
    def names(self) -> list[str]:
        return list(self.refs)

    def load(self, name: str) -> np.ndarray:
        ref = self.refs[name]
        n_rows = ref.shape[0] if ref.shape else 1
        return self.read_rows(name, 0, n_rows).reshape(ref.shape)

    def read_rows(self, name: str, r0: int, r1: int, row_items: int | None = None) -> np.ndarray:
        rows = self._rows.get(name)
        if rows is None:
            return self.ckpt.read_rows(name, r0, r1, row_items)
        if row_items not in (None, self.refs[name].shape[1]):
            raise ConvertError(f"tensor {shown(name)} is quantized and cannot be split")
        return rows(r0, r1)

    def close(self) -> None:
        self.ckpt.close()

    def __getattr__(self, name: str):
        if name == "ckpt":       # not set yet (or a copy being built): no recursion
            raise AttributeError(name)
        # the rest of the checkpoint's surface (raw reads an adapter makes of tensors it carries
        # as stored) is the wrapped checkpoint's
        return getattr(self.ckpt, name)

    # --- fp8 --------------------------------------------------------------------------------
    def _fp8(self, name: str, ref, used: set[str]):
        if ref.dtype == "F8_E5M2":
            raise ConvertError(f"tensor {shown(name)} is F8_E5M2; only e4m3 fp8 checkpoints are supported")
        if ref.dtype != "F8_E4M3":
            return None
        scale = next((name + s for s in ("_scale_inv", "_scale") if name + s in self.ckpt.refs), None)
        if scale is None:
            raise ConvertError(f"fp8 tensor {shown(name)} has no {shown(name + '_scale_inv')} beside it")
        if len(ref.shape) != 2:
            raise ConvertError(f"fp8 tensor {shown(name)} is not 2-D")
        sref = self.ckpt.refs[scale]
        if sref.dtype not in _FLOATS:
            raise ConvertError(f"{shown(scale)} is {shown(sref.dtype)}, expected F32, F16 or BF16")
        why = fp8.check_scale(sref.shape, ref.shape, self.cfg.block)
        if why:
            raise ConvertError(f"fp8 tensor {shown(name)} {list(ref.shape)} has a {why}")
        used.add(scale)
        n_rows, n_cols = ref.shape

        def rows(r0: int, r1: int) -> np.ndarray:
            s = self.ckpt.load(scale)
            return fp8.dequant_rows(self.ckpt.read_stored(name, r0, r1),
                                    fp8.scale_rows(s, n_rows, n_cols, r0, r1, self.cfg.block))

        self._add(name, ref.shape, ref.nbytes + sref.nbytes, rows)
        return name

    # --- GPTQ / AWQ -------------------------------------------------------------------------
    def _packed(self, name: str, ref, used: set[str]):
        if not name.endswith(".qweight"):
            return None
        base = name[: -len(".qweight")]
        parts = {p: base + "." + p for p in ("qzeros", "scales", "g_idx")}
        for p in ("qzeros", "scales"):
            if parts[p] not in self.ckpt.refs:
                raise ConvertError(f"{self.method.upper()} layer {shown(base)} has no {p} tensor")
        refs = {p: self.ckpt.refs[n] for p, n in parts.items() if n in self.ckpt.refs}
        used.update(parts[p] for p in refs)
        is_awq = self.method == "awq"
        shape = self._check_packed(base, ref, refs, is_awq)
        nbytes = ref.nbytes + sum(r.nbytes for r in refs.values())
        self._add(base + ".weight", shape, nbytes,
                  (lambda r0, r1: self._awq_rows(base, shape, r0, r1)) if is_awq else
                  (lambda r0, r1: self._gptq_rows(base, shape, r0, r1)))
        return base

    def _check_packed(self, base: str, qw, refs: dict, is_awq: bool) -> tuple[int, int]:
        pf = 32 // (4 if is_awq else self.cfg.bits)
        sc, qz = refs["scales"], refs["qzeros"]
        bad = (qw.dtype not in ("I32", "U32") or qz.dtype not in ("I32", "U32")
               or sc.dtype not in _FLOATS or len(qw.shape) != 2 or len(sc.shape) != 2
               or len(qz.shape) != 2)
        if not bad:
            n_in, n_out = (qw.shape[0], qw.shape[1] * pf) if is_awq else (qw.shape[0] * pf, qw.shape[1])
            groups = sc.shape[0]
            bad = (sc.shape[1] != n_out or qz.shape != (groups, -(-n_out // pf)) or groups == 0
                   or ("g_idx" not in refs and n_in % groups != 0))
            if "g_idx" in refs and not is_awq:
                bad = bad or refs["g_idx"].shape != (n_in,) or refs["g_idx"].dtype not in ("I32", "I64")
        if bad:
            raise ConvertError(f"{self.method.upper()} layer {shown(base)} has inconsistent qweight/"
                               "qzeros/scales/g_idx shapes or dtypes")
        return n_out, n_in

    def _gptq_rows(self, base: str, shape: tuple[int, int], r0: int, r1: int) -> np.ndarray:
        bits, pf = self.cfg.bits, 32 // self.cfg.bits
        n_out, n_in = shape
        scales = self.ckpt.load(base + ".scales")[:, r0:r1]
        groups = scales.shape[0]
        zeros = gptq.unpack_cols(self.ckpt.read_stored(base + ".qzeros", 0, groups), bits)[:, r0:r1]
        if self.cfg.zero_plus_one:
            zeros = zeros + 1
        if base + ".g_idx" in self.ckpt.refs:
            g_idx = self.ckpt.read_stored(base + ".g_idx", 0, n_in).reshape(-1).astype(np.int64)
            if g_idx.size and (g_idx.min() < 0 or g_idx.max() >= groups):
                raise ConvertError(f"GPTQ layer {shown(base)}: g_idx names a group outside 0..{groups - 1}")
        else:
            g_idx = np.arange(n_in) // (n_in // groups)
        return gptq.dequant(self._columns(base + ".qweight", r0, r1), zeros, scales, g_idx, bits)

    def _awq_rows(self, base: str, shape: tuple[int, int], r0: int, r1: int) -> np.ndarray:
        n_out, n_in = shape
        w0, w1 = r0 // 8, -(-r1 // 8)
        scales = self.ckpt.load(base + ".scales")[:, r0:r1]
        groups = scales.shape[0]
        qzeros = self.ckpt.read_stored(base + ".qzeros", 0, groups)[:, w0:w1]
        return awq.dequant(self._columns(base + ".qweight", w0, w1), qzeros, scales, n_in // groups,
                           r0 - 8 * w0, r1 - 8 * w0)

    def _columns(self, name: str, c0: int, c1: int) -> np.ndarray:
        """Columns c0:c1 of a stored 2-D tensor, gathered from row blocks of bounded size."""
        n_rows, n_cols = self.ckpt.refs[name].shape
        step = max(1, _BLOCK_BYTES // (4 * n_cols))
        out = None
        for a in range(0, n_rows, step):
            block = self.ckpt.read_stored(name, a, min(n_rows, a + step))
            if out is None:
                out = np.empty((n_rows, c1 - c0), dtype=block.dtype)
            out[a:a + len(block)] = block[:, c0:c1]
        return out if out is not None else np.empty((0, c1 - c0), dtype=np.int32)

    def _add(self, name: str, shape, nbytes: int, rows) -> None:
        self.refs[name] = LogicalRef(name, (int(shape[0]), int(shape[1])), nbytes)
        self._rows[name] = rows
