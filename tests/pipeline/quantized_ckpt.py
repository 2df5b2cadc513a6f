"""Quantized checkpoints built by the tests, with their own (independent, loop-based) packers and
dequantizers: FP8 e4m3 with 128x128 block scales, GPTQ (v1/v2, act-order g_idx) and AWQ GEMM.

Each `*_layer` returns the stored tensors of one linear layer and the float32 weight they stand
for, computed here from the stored integers (never through quantdesk's dequantizers).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from .tiny_llama import to_bf16_bits

_NP = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "F8_E4M3": np.uint8}
# the linear layers quantized checkpoints store packed (dense MLPs and each expert's alike)
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def write_mixed_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """{name: (safetensors dtype, values)}; BF16 values are float32 rounded on write."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        data = to_bf16_bits(arr).tobytes() if dtype == "BF16" else np.ascontiguousarray(arr, _NP[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for b in blobs:
            f.write(b)


# --- FP8 ------------------------------------------------------------------------------------
def e4m3_value(code: int) -> float:
    """One e4m3 byte decoded through float32's own bit layout (normal) or its definition (subnormal)."""
    sign, exp, man = code >> 7, (code >> 3) & 0xF, code & 7
    if exp == 0xF and man == 7:
        return float("nan")
    if exp == 0:
        v = man * 2.0 ** -9
    else:
        v = float(np.array([((exp - 7 + 127) << 23) | (man << 20)], dtype=np.uint32).view(np.float32)[0])
    return -v if sign else v


E4M3_REF = np.array([e4m3_value(c) for c in range(256)], dtype=np.float32)


def fp8_layer(w: np.ndarray, block: int = 128, rng=None):
    """e4m3 codes of w / scale with one float32 scale per block x block tile (the last tiles
    partial), nearest-value rounding; returns (codes, scale_inv, dequantized)."""
    rows, cols = w.shape
    nb0, nb1 = -(-rows // block), -(-cols // block)
    scale = np.empty((nb0, nb1), dtype=np.float32)
    for i in range(nb0):
        for j in range(nb1):
            tile = w[i * block:(i + 1) * block, j * block:(j + 1) * block]
            scale[i, j] = max(np.abs(tile).max(), 1e-8) / 448.0
    full = scale[np.arange(rows)[:, None] // block, np.arange(cols)[None, :] // block]
    pos = E4M3_REF[:0x7F]                                # codes 0..126: finite, ascending
    x = w / full
    idx = np.clip(np.searchsorted(pos, np.abs(x)), 1, 126)
    idx = np.where(np.abs(np.abs(x) - pos[idx - 1]) <= np.abs(pos[idx] - np.abs(x)), idx - 1, idx)
    codes = (idx | np.where(x < 0, 0x80, 0)).astype(np.uint8)
    return codes, scale, E4M3_REF[codes] * full


# --- GPTQ -----------------------------------------------------------------------------------
def pack_along_rows(q: np.ndarray, bits: int) -> np.ndarray:
    pf = 32 // bits
    out = np.zeros((q.shape[0] // pf, q.shape[1]), dtype=np.uint64)
    for k in range(pf):
        out |= q[k::pf].astype(np.uint64) << (bits * k)
    return out.astype(np.uint32).view(np.int32)


def pack_along_cols(q: np.ndarray, bits: int, order=None) -> np.ndarray:
    pf = 32 // bits
    order = order or list(range(pf))
    out = np.zeros((q.shape[0], q.shape[1] // pf), dtype=np.uint64)
    for k in range(pf):
        out |= q[:, order[k]::pf].astype(np.uint64) << (bits * k)
    return out.astype(np.uint32).view(np.int32)


def gptq_layer(w: np.ndarray, *, bits: int = 4, group: int = 64, act_order: bool = True,
               v1: bool = True, rng=None):
    """GPTQ tensors of w (out, in): asymmetric min/max per (group, output); act-order assigns
    input columns to groups in a random order, recorded in g_idx."""
    rng = rng or np.random.default_rng(0)
    n_out, n_in = w.shape
    maxq = (1 << bits) - 1
    perm = rng.permutation(n_in) if act_order else np.arange(n_in)
    g_idx = np.empty(n_in, dtype=np.int32)
    g_idx[perm] = np.arange(n_in) // group
    n_groups = n_in // group
    scales = np.empty((n_groups, n_out), dtype=np.float16)
    zeros = np.empty((n_groups, n_out), dtype=np.int64)
    for g in range(n_groups):
        cols = w[:, g_idx == g]
        lo, hi = np.minimum(cols.min(1), 0), np.maximum(cols.max(1), 0)
        scales[g] = ((hi - lo) / maxq + 1e-6).astype(np.float16)
        zeros[g] = np.clip(np.round(-lo / scales[g].astype(np.float32)), 0, maxq)
    s32 = scales.astype(np.float32)
    q = np.empty((n_in, n_out), dtype=np.int64)
    for i in range(n_in):
        g = g_idx[i]
        q[i] = np.clip(np.round(w[:, i] / s32[g]) + zeros[g], 0, maxq)
    deq = np.empty((n_out, n_in), dtype=np.float32)
    for i in range(n_in):
        deq[:, i] = s32[g_idx[i]] * (q[i] - zeros[g_idx[i]])
    stored_zeros = zeros - 1 if v1 else zeros       # v1 keeps zero - 1 (read back with +1)
    stored_zeros = stored_zeros & maxq              # a zero of 0 in v1 wraps as the real files do
    tensors = {"qweight": ("I32", pack_along_rows(q, bits)),
               "qzeros": ("I32", pack_along_cols(stored_zeros, bits)),
               "scales": ("F16", scales), "g_idx": ("I32", g_idx)}
    if v1:  # the wrapped zero of 0 decodes to maxq + 1, as GPTQ v1 kernels read it
        deq = np.empty((n_out, n_in), dtype=np.float32)
        z = (stored_zeros + 1)
        for i in range(n_in):
            deq[:, i] = s32[g_idx[i]] * (q[i] - z[g_idx[i]])
    return tensors, deq


# --- AWQ ------------------------------------------------------------------------------------
AWQ_PACK_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def awq_layer(w: np.ndarray, *, group: int = 64, rng=None):
    """AWQ GEMM tensors of w (out, in): qweight (in, out/8) packed in AutoAWQ's order."""
    n_out, n_in = w.shape
    n_groups = n_in // group
    scales = np.empty((n_groups, n_out), dtype=np.float16)
    zeros = np.empty((n_groups, n_out), dtype=np.int64)
    q = np.empty((n_in, n_out), dtype=np.int64)
    for g in range(n_groups):
        cols = w[:, g * group:(g + 1) * group]
        lo, hi = np.minimum(cols.min(1), 0), np.maximum(cols.max(1), 0)
        scales[g] = ((hi - lo) / 15 + 1e-6).astype(np.float16)
        zeros[g] = np.clip(np.round(-lo / scales[g].astype(np.float32)), 0, 15)
        s = scales[g].astype(np.float32)
        q[g * group:(g + 1) * group] = np.clip(np.round(cols.T / s) + zeros[g], 0, 15)
    deq = np.empty((n_out, n_in), dtype=np.float32)
    for i in range(n_in):
        g = i // group
        deq[:, i] = scales[g].astype(np.float32) * (q[i] - zeros[g])
    # AutoAWQ's pack: nibble k of word c holds column 8*c + AWQ_PACK_ORDER[k]
    tensors = {"qweight": ("I32", pack_along_cols(q, 4, AWQ_PACK_ORDER)),
               "qzeros": ("I32", pack_along_cols(zeros, 4, AWQ_PACK_ORDER)),
               "scales": ("F16", scales)}
    return tensors, deq


def quantize_checkpoint(folder: Path, weights: dict[str, np.ndarray], method: str, *,
                        n_layer: int, other_dtype: str = "F32", **kw) -> dict[str, np.ndarray]:
    """Rewrite `folder`'s model.safetensors with its linear layers in `method`'s form and its
    config's quantization_config set; returns the weights the stored tensors stand for."""
    rng = np.random.default_rng(7)
    stored: dict[str, tuple[str, np.ndarray]] = {}
    values = dict(weights)
    for name, w in weights.items():
        base = name[: -len(".weight")]
        if base.rsplit(".", 1)[-1] not in LINEARS:
            stored[name] = (other_dtype, w)       # exact: "BF16" only for bf16-stored values
            continue
        if method == "fp8":
            codes, scale, deq = fp8_layer(w)
            stored[name] = ("F8_E4M3", codes)
            stored[name + "_scale_inv"] = ("F32", scale)
        else:
            parts, deq = (gptq_layer(w, rng=rng, **kw) if method == "gptq" else awq_layer(w, **kw))
            for part, t in parts.items():
                stored[f"{base}.{part}"] = t
        values[name] = deq
    (folder / "model.safetensors").unlink()
    write_mixed_safetensors(folder / "model.safetensors", stored)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["quantization_config"] = {
        "fp8": {"quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3",
                "weight_block_size": [128, 128]},
        "gptq": {"quant_method": "gptq", "bits": 4, "group_size": 64, "desc_act": True,
                 "sym": False, "checkpoint_format": "gptq"},
        "awq": {"quant_method": "awq", "bits": 4, "group_size": 64, "version": "gemm",
                "zero_point": True},
    }[method]
    (folder / "config.json").write_text(json.dumps(cfg))
    return values
