"""Which GGML type each tensor gets for a file type such as Q4_K_M: llama.cpp's rules, once.

`tensor_types()` is the one answer to "which type does this tensor get" for every door: the
quantizer (writer.py), the planner's what-if (`planner.retype`), the Quantize page's table and
`quantdesk plan`, and the hub's fit badges (through the planner). `FILE_TYPES` (file_types.py) is
the one catalogue of file types (name, llama_ftype id, default tensor type, note, imatrix need).

This follows `llama_tensor_get_type` in llama.cpp's src/llama-quant.cpp (the version
llama-cpp-python 0.3.36 ships), restricted to the file types we produce:
  * only 2-D+ tensors whose names end in "weight" (not norms, not MoE gates) are quantized;
  * output.weight (and token_embd.weight when the embeddings are tied) gets Q6_K, or Q8_0 when its
    rows are not a multiple of the block size;
  * attn_v / ffn_down get more bits on the `use_more_bits` layers for the _M mixes, etc.;
  * a type whose block does not divide the row length falls back (`tensor_type_fallback`).
The counters that pick "more bits" layers advance in llama.cpp's tensor order: non-layer tensors
first, then by layer number, then by name — we sort the same way.

One rule of our own (llama.cpp refuses the file instead; its users retype by hand with
--tensor-type): a tensor of a multi-token-prediction layer (a block holding `nextn.*` tensors,
GLM-4.5's) whose type needs an importance matrix that has no entry for it gets the type llama.cpp
gives token_embd in that file type (WITHOUT_IMATRIX: Q2_K at IQ1_*, IQ2_XXS, IQ2_XS; IQ3_S at
IQ2_S, IQ2_M, IQ3_XXS, IQ3_XS). `quantdesk imatrix` runs the MTP layer,
so its matrices have entries, but nothing multiplies `nextn.embed_tokens` (a lookup table like
token_embd): that one always takes the rule, and an imatrix from llama-imatrix, which never runs
the layer, sends the whole layer there. Without the imatrix's names (the planner), the mix
assumes one from `quantdesk imatrix`.
"""
from __future__ import annotations

import re

from quantdesk.kernels import get_format, row_bytes

from ..convert.source import ModelParams
from .file_types import (FILE_TYPES, IMATRIX_TENSOR_TYPES, WITHOUT_IMATRIX, FileType,  # noqa: F401
                         file_type, imatrix_refusal)


def tensor_bytes(qtype: str, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor of numpy `shape` (last axis = row) stored as `qtype`."""
    n_rows = 1
    for d in shape[:-1]:
        n_rows *= int(d)
    return n_rows * row_bytes(qtype, int(shape[-1]) if shape else 1)


_FLOATS = ("F32", "F16", "BF16")
# Names llama.cpp never quantizes although they are 2-D weights (checked by substring).
_NEVER = ("_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
          "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
          "indexer.q_proj.weight", "attn_rel_b.weight", ".position_embd", "time_mix_first.weight",
          "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight",
          "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight",
          "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
          "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight")
_LAYER = re.compile(r"^blk\.(-?\d+)\.")


def llama_order_key(name: str) -> tuple[int, str]:
    """llama.cpp's weight order: by layer number (non-layer tensors first), then by name."""
    m = _LAYER.match(name)
    return (int(m.group(1)) if m else -1, name)


def _allows_quantization(name: str, n_dims: int) -> bool:
    if n_dims < 2 or not name.endswith("weight"):
        return False
    if name in ("position_embd.weight", "token_types.weight"):
        return False
    return not any(s in name for s in _NEVER)


def _category(name: str) -> str:
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for key, cat in (("attn_qkv.weight", "attn_qkv"), ("attn_kv_b.weight", "attn_kv_b"),
                     ("attn_v.weight", "attn_v"), ("attn_k.weight", "attn_k"),
                     ("attn_q.weight", "attn_q"), ("attn_output.weight", "attn_output"),
                     ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down")):
        if key in name:
            return cat
    return "other"


def _more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _block(qtype: str) -> int:
    return get_format(qtype).block_size


# Rows that are not a multiple of a type's block: llama.cpp's `tensor_type_fallback` (0.3.36's
# vendored llama.cpp: Q2_K/Q3_K and the ternary types go to Q4_0, the 256-block i-quants to
# IQ4_NL; older llama.cpp sent Q2_K/Q3_K to IQ4_NL, which our kernels now also write).
_FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
             "TQ1_0": "Q4_0", "TQ2_0": "Q4_0", "IQ4_XS": "IQ4_NL", "IQ3_S": "IQ4_NL",
             "IQ3_XXS": "IQ4_NL", "IQ2_S": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_XXS": "IQ4_NL",
             "IQ1_M": "IQ4_NL", "IQ1_S": "IQ4_NL"}
_IQ4 = ("IQ4_NL", "IQ4_XS")
# llama.cpp's groups of i-quant file types in llama_tensor_get_type_impl
_LOW = ("IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M")      # one branch of their own
_IQ2_SM = ("IQ2_S", "IQ2_M")
_IQ1 = ("IQ1_S", "IQ1_M")
_OUTPUT_Q5_K = _LOW + ("IQ3_XXS",)                                    # output.weight -> Q5_K
_ATTN_OUT_MOE_Q5_K = ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S",
                      "Q4_K_M", "IQ3_S", "IQ3_M", "IQ4_XS")


def _fallback(qtype: str, ncols: int) -> str:
    if ncols % _block(qtype) == 0:
        return qtype
    # a 32-block type has no smaller block to demote to: it goes to F16 like a failed fallback
    new = _FALLBACK.get(qtype, qtype)
    return new if ncols % _block(new) == 0 else "F16"


class _State:
    def __init__(self, names: list[str], params: ModelParams, has_imatrix: bool):
        self.has_imatrix = has_imatrix
        cats = [_category(n) for n in names]
        self.n_attention_wv = sum(c in ("attn_v", "attn_qkv", "attn_kv_b") for c in cats)
        self.tied = "output" not in cats
        self.n_layer = params.n_layer
        self.i_attention_wv = self.i_ffn_down = self.i_ffn_gate = self.i_ffn_up = 0


def _pick_low(st: _State, f: str, p: ModelParams, cat: str, new: str) -> str:
    """llama.cpp's branch for the 1- and 2-bit i-quant file types (_LOW)."""
    if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
        st.i_attention_wv += 1
        if _gqa(p) >= 4 or p.n_expert >= 4:
            return "Q4_K"
        return "IQ3_S" if f in _IQ2_SM else "Q2_K"
    if p.n_expert == 8 and cat == "attn_k":
        return "Q4_K"
    if cat == "ffn_down":
        i = st.i_ffn_down
        st.i_ffn_down += 1
        if i < st.n_layer // 8:
            return "IQ3_S" if f in _IQ2_SM else "Q2_K"
        return new
    if cat == "attn_output":
        if p.n_expert == 8:
            return "Q5_K"
        return "IQ2_XXS" if f in _IQ1 else ("IQ3_S" if f in _IQ2_SM else new)
    return new


def _gqa(p: ModelParams) -> int:
    return p.n_head // p.n_head_kv if p.n_head_kv else 0


def _pick(st: _State, ft: FileType, p: ModelParams, name: str, shape: tuple[int, ...],
          cat: str) -> str:
    """llama_tensor_get_type_impl for every file type of the catalogue."""
    new = ft.default
    f = ft.name
    ncols = shape[-1]
    gqa = _gqa(p)
    falcon = p.arch == "falcon"
    if cat == "output" or (st.tied and cat == "token_embd"):
        if f == "MXFP4_MOE" or falcon or ncols % _block(new) != 0:
            return "Q8_0"
        if f in _OUTPUT_Q5_K:
            return "Q5_K"
        return new if new == "Q8_0" else "Q6_K"
    if f == "MXFP4_MOE":
        # stacked expert tensors (ggml ne[2] > 1) get MXFP4, everything else Q8_0. (llama.cpp's
        # BailingMoE3 exception, 3-D MLA projections that stay Q8_0, is not modelled here.)
        return "MXFP4" if len(shape) >= 3 and shape[-3] > 1 else "Q8_0"
    if cat == "token_embd":
        if f in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            return "Q2_K"
        if f in _IQ2_SM + ("IQ3_XXS",):
            return "IQ3_S"
        return "Q4_K" if f in ("TQ1_0", "TQ2_0") else new
    if f in _LOW:
        return _pick_low(st, f, p, cat, new)
    if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
        i, n = st.i_attention_wv, st.n_attention_wv
        if f == "Q2_K":
            new = "Q4_K" if gqa >= 4 else "Q3_K"
        elif f == "IQ3_XXS":
            new = "Q4_K" if gqa >= 4 else ("IQ3_XXS" if st.has_imatrix else "IQ3_S")
        elif f in ("IQ3_XS", "IQ3_S") and gqa >= 4:
            new = "Q4_K"
        elif f == "IQ3_M":
            new = "Q4_K"
        elif f == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif f == "Q3_K_L":
            new = "Q5_K"
        elif f in _IQ4 and gqa >= 4:
            new = "Q5_K"
        elif f in ("Q4_K_M", "Q5_K_M") and _more_bits(i, n):
            new = "Q6_K"
        elif f == "Q4_K_S" and i < 4:
            new = "Q5_K"
        if p.arch == "llama" and p.n_layer == 80 and p.n_head != p.n_head_kv:  # LLM_TYPE_70B
            if new in ("Q3_K", "Q4_K"):
                new = "Q5_K"
        if p.n_expert == 8:
            new = "Q8_0"
        st.i_attention_wv += 1
        return new
    if cat in ("attn_k", "attn_q"):
        if cat == "attn_k" and p.n_expert == 8:
            return "Q8_0"
        return {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(f, new)
    if cat == "ffn_down":
        i, n = _layer_info(st.i_ffn_down, st.n_layer, name, p)
        if f == "Q2_K":
            new = "Q3_K"
        elif f == "IQ3_XXS" and not st.has_imatrix:
            new = "Q4_K" if i < n // 8 else "Q3_K"
        elif f == "Q3_K_M":
            new = "Q5_K" if i < n // 16 else ("Q4_K" if not falcon or _more_bits(i, n) else "Q3_K")
        elif f == "IQ3_M" and (i < n // 8 or (p.n_expert == 8 and _more_bits(i, n))):
            new = "Q4_K"
        elif f == "Q3_K_L":
            new = "Q4_K" if falcon else "Q5_K"
        elif f == "Q4_K_M":
            if falcon:
                new = "Q6_K" if i < n // 16 else ("Q5_K" if _more_bits(i, n) else "Q4_K")
            elif _more_bits(i, n):
                new = "Q6_K"
        elif f in _IQ4 and i < n // 8 and not st.has_imatrix:
            new = "Q5_K"
        elif f == "Q5_K_M" and _more_bits(i, n):
            new = "Q6_K"
        elif f == "Q4_K_S" and not falcon and i < n // 8:
            new = "Q5_K"
        elif f in ("Q4_0", "Q5_0") and st.has_imatrix and i < n // 8:
            # llama.cpp guards the first ffn_down layers, but only with an imatrix (reproducibility)
            new = "Q4_1" if f == "Q4_0" else "Q5_1"
        st.i_ffn_down += 1
        return new
    if cat == "attn_output":
        if not falcon:
            if p.n_expert == 8:
                if f in _ATTN_OUT_MOE_Q5_K:
                    new = "Q5_K"
            else:
                new = {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K",
                       "IQ3_M": "Q4_K"}.get(f, new)
        elif f == "Q3_K_L":
            new = "Q4_K"
        return new
    if cat in ("ffn_gate", "ffn_up"):
        attr = "i_" + cat
        i, n = _layer_info(getattr(st, attr), st.n_layer, name, p)
        setattr(st, attr, getattr(st, attr) + 1)
        if f == "IQ3_XS" and n // 8 <= i < 7 * n // 8:
            new = "IQ3_XXS"
    return new


def _layer_info(i: int, n: int, name: str, p: ModelParams) -> tuple[int, int]:
    if p.n_expert > 1:
        m = _LAYER.match(name)
        if not m:
            raise ValueError(f"cannot tell the layer of {name}")
        return int(m.group(1)), n
    return i, n


def _mtp_without_importance(has_imatrix: bool, imatrix_names, mtp_layers: set[str]):
    """name -> True for a tensor of an MTP layer that the importance matrix has no entry for."""
    def lacks(name: str) -> bool:
        m = _LAYER.match(name)
        if not m or m.group(1) not in mtp_layers:
            return False
        if imatrix_names is not None:
            return name not in imatrix_names
        return not has_imatrix or ".nextn.embed_tokens." in name   # as `quantdesk imatrix` collects
    return lacks


def tensor_types(tensors: list[tuple[str, tuple[int, ...], str]], ftype: str,
                 params: ModelParams, has_imatrix: bool = False,
                 imatrix_names=None) -> dict[str, str]:
    """{name: GGML type name} for each (name, numpy shape, current type) as file type `ftype`,
    decided in llama.cpp's order. Tensors llama.cpp never quantizes keep their current type.
    `imatrix_names`: the tensors the importance matrix has entries for (None: unknown, assumed
    made by `quantdesk imatrix` when `has_imatrix`), for the MTP rule (module docstring)."""
    ft = file_type(ftype)
    ordered = sorted(tensors, key=lambda t: llama_order_key(t[0]))
    st = _State([t[0] for t in ordered], params, has_imatrix)
    mtp_layers = {m.group(1) for n, _, _ in ordered if ".nextn." in n and (m := _LAYER.match(n))}
    lacks = _mtp_without_importance(has_imatrix, imatrix_names, mtp_layers)
    quantized_default = not ft.is_float
    out: dict[str, str] = {}
    for name, shape, current in ordered:
        dims = list(shape)
        while len(dims) > 1 and dims[0] == 1:
            dims.pop(0)
        if not _allows_quantization(name, len(dims)) or (current == "MXFP4" and len(dims) >= 3):
            # (gpt-oss's experts arrive in MXFP4: carried as they are, never rounded twice)
            out[name] = current
            continue
        if not quantized_default:
            out[name] = ft.default
            continue
        ncols = shape[-1]
        new = _pick(st, ft, params, name, tuple(shape), _category(name))
        new = _fallback(new, ncols) if new not in _FLOATS else new
        if new in IMATRIX_TENSOR_TYPES and ft.name in WITHOUT_IMATRIX and lacks(name):
            new = _fallback(WITHOUT_IMATRIX[ft.name], ncols)   # (new: what llama.cpp would write)
        out[name] = new
    return out
