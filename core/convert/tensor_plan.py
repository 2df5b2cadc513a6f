"""Checkpoint tensors → the GGUF tensors we write, each loaded on demand (whole or by rows).

Three shapes of mapping, all streaming (nothing is read until the writer asks for rows):
  * one HF tensor → one GGUF tensor (with the adapter's transform: q/k permutation, +1 norms);
  * one HF tensor per expert (`...experts.{e}.w1.weight`) → one stacked 3-D GGUF tensor
    (`blk.N.ffn_gate_exps.weight`, numpy shape (n_expert, rows, cols)), as llama.cpp expects;
  * one fused HF tensor → several GGUF tensors (an adapter's `split`: Granite MoE's gate|up;
    or its `derive`, loaded whole: DeepSeek's kv_b_proj → per-head k_b (transposed) and v_b).
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from quantdesk.core.text import shown

from .errors import ConvertError
from .safetensors import SafetensorsCheckpoint
from .source import SourceTensor

_EXPERT = re.compile(r"^(?P<prefix>.+\.experts)\.(?P<e>\d+)\.(?P<w>[A-Za-z0-9_]+)\.weight$")
_FLOAT = ("F32", "F16", "BF16")


def plan_tensors(ckpt: SafetensorsCheckpoint, adapter) -> list[SourceTensor]:
    tensors, consumed = adapter.packed_tensors(ckpt)
    experts: dict[tuple[str, str], dict[int, str]] = {}
    for hf_name in ckpt.names():
        if adapter.skip(hf_name) or hf_name in consumed:
            continue
        ref = ckpt.refs[hf_name]
        if ref.dtype not in _FLOAT:
            raise ConvertError(f"tensor {shown(hf_name)} is {shown(ref.dtype)}; only F32, F16 and BF16 "
                               "checkpoints can be converted")
        m = _EXPERT.match(hf_name)
        if m:
            experts.setdefault((m["prefix"], m["w"]), {})[int(m["e"])] = hf_name
            continue
        derived = adapter.derive(hf_name, ref.shape)
        if derived:
            tensors += [SourceTensor(name=gguf_name, shape=shape, dtype="F32",
                                     nbytes=ref.nbytes * int(np.prod(shape)) // int(np.prod(ref.shape)),
                                     load=lambda n=hf_name, fn=fn: fn(ckpt.load(n)))
                        for gguf_name, shape, fn in derived]
            continue
        parts = adapter.split(hf_name, ref.shape)
        if parts:
            tensors += [_part(ckpt, hf_name, gguf_name, lo, hi) for gguf_name, lo, hi in parts]
            continue
        tensors.append(SourceTensor(
            name=adapter.gguf_name(hf_name), shape=ref.shape, dtype="F32", nbytes=ref.nbytes,
            load=lambda n=hf_name: adapter.transform(n, ckpt.load(n)),
            load_rows=_row_loader(ckpt, adapter, hf_name) if len(ref.shape) == 2 else None))
    for (prefix, w), members in experts.items():
        tensors.append(_stacked(ckpt, adapter, f"{prefix}.{w}.weight", members))
    return tensors


def _row_loader(ckpt: SafetensorsCheckpoint, adapter, hf_name: str):
    """Rows of a 2-D tensor read straight from the file (2-D transforms only reorder rows)."""
    n_rows = ckpt.refs[hf_name].shape[0]
    order = adapter.row_order(hf_name, n_rows)

    def rows(r0: int, r1: int) -> np.ndarray:
        if order is None:
            return ckpt.read_rows(hf_name, r0, r1)
        return ckpt.read_rows(hf_name, 0, n_rows)[order[r0:r1]]  # q/k: small, read whole

    return rows


def _stacked(ckpt: SafetensorsCheckpoint, adapter, merged: str, members: dict[int, str]) -> SourceTensor:
    n_expert = len(members)
    if sorted(members) != list(range(n_expert)):
        missing = next(e for e in range(n_expert + 1) if e not in members)
        raise ConvertError(f"{shown(merged)}: expert {missing} is missing from the checkpoint")
    names = [members[e] for e in range(n_expert)]
    shapes = {ckpt.refs[n].shape for n in names}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ConvertError(f"the experts of {shown(merged)} are not 2-D tensors of one shape")
    rows, cols = next(iter(shapes))

    def load() -> np.ndarray:
        return np.stack([ckpt.load(n) for n in names])

    def load_rows(r0: int, r1: int) -> np.ndarray:
        out = []
        for e in range(r0 // rows, (r1 - 1) // rows + 1):   # the experts these rows cross
            lo, hi = max(r0, e * rows) - e * rows, min(r1, (e + 1) * rows) - e * rows
            out.append(ckpt.read_rows(names[e], lo, hi))
        return np.concatenate(out)

    return SourceTensor(name=adapter.gguf_name(merged), shape=(n_expert, rows, cols), dtype="F32",
                        nbytes=sum(ckpt.refs[n].nbytes for n in names), load=load, load_rows=load_rows)


def _part(ckpt: SafetensorsCheckpoint, hf_name: str, gguf_name: str, lo: int, hi: int) -> SourceTensor:
    """Rows lo:hi of axis -2 of a (n_expert, rows, cols) or (rows, cols) tensor."""
    ref = ckpt.refs[hf_name]
    *lead, rows, cols = ref.shape
    n_outer = int(np.prod(lead, dtype=np.int64)) if lead else 1
    part = hi - lo
    shape = (*lead, part, cols)

    def load_rows(r0: int, r1: int) -> np.ndarray:
        out = []
        for o in range(r0 // part, (r1 - 1) // part + 1):
            a, b = max(r0, o * part) - o * part, min(r1, (o + 1) * part) - o * part
            out.append(ckpt.read_rows(hf_name, o * rows + lo + a, o * rows + lo + b, row_items=cols))
        return np.concatenate(out)

    load: Callable[[], np.ndarray] = lambda: load_rows(0, n_outer * part).reshape(shape)
    return SourceTensor(name=gguf_name, shape=shape, dtype="F32", nbytes=ref.nbytes * part // rows,
                        load=load, load_rows=load_rows)


def transposed_experts(ckpt: SafetensorsCheckpoint, hf_name: str, gguf_name: str,
                       cols: slice = slice(None)) -> SourceTensor:
    """A fused expert tensor stored input x output, (n_expert, n_in, n_out), as llama.cpp's
    (n_expert, rows, n_in) where rows are the output columns `cols` (Llama 4's gate = first half,
    gpt-oss's gate = even columns). One expert is read and transposed at a time while streaming."""
    n_exp, n_in, n_out = ckpt.refs[hf_name].shape
    rows = len(range(n_out)[cols])
    cache: dict[int, np.ndarray] = {}

    def expert(e: int) -> np.ndarray:   # (rows, n_in)
        if e not in cache:
            cache.clear()
            stored = ckpt.read_rows(hf_name, e * n_in, (e + 1) * n_in, row_items=n_out)
            cache[e] = np.ascontiguousarray(stored[:, cols].T)
        return cache[e]

    def load_rows(r0: int, r1: int) -> np.ndarray:
        parts = []
        for e in range(r0 // rows, (r1 - 1) // rows + 1):
            a, b = max(r0, e * rows) - e * rows, min(r1, (e + 1) * rows) - e * rows
            parts.append(expert(e)[a:b])
        return np.concatenate(parts)

    shape = (n_exp, rows, n_in)
    return SourceTensor(name=gguf_name, shape=shape, dtype="F32",
                        nbytes=ckpt.refs[hf_name].nbytes * rows // n_out,
                        load=lambda: load_rows(0, n_exp * rows).reshape(shape), load_rows=load_rows)


def fused_gate_up_down(ckpt: SafetensorsCheckpoint, pattern, base: str, gguf_name
                       ) -> tuple[list[SourceTensor], set[str]]:
    """Experts stored fused and input x output (Llama 4, Qwen3-VL-MoE): `gate_up_proj`
    (n_expert, n_embd, 2 * n_ff; gate | up halves) and `down_proj` (n_expert, n_ff, n_embd) as
    llama.cpp's gate/up/down expert stacks, each transposed one expert at a time
    (`transposed_experts`). `pattern` matches such a name with groups (layer, kind); `base` is the
    per-expert HF name prefix for layer {i} that `gguf_name` maps. Returns (tensors, names used)."""
    out: list[SourceTensor] = []
    consumed: set[str] = set()
    for name in ckpt.names():
        m = pattern.match(name)
        if not m:
            continue
        consumed.add(name)
        prefix = base.format(i=m.group(1))
        if m.group(2) == "down_proj":
            out.append(transposed_experts(ckpt, name, gguf_name(prefix + "down_proj.weight")))
            continue
        half = ckpt.refs[name].shape[-1] // 2   # gate | up
        out.append(transposed_experts(ckpt, name, gguf_name(prefix + "gate_proj.weight"), slice(0, half)))
        out.append(transposed_experts(ckpt, name, gguf_name(prefix + "up_proj.weight"), slice(half, None)))
    return out, consumed
