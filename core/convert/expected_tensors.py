"""The tensors llama.cpp's loader creates for each architecture we convert, with their shapes.

A checkpoint that lacks one of them, holds one of the wrong shape, or holds one llama.cpp does
not read converts to a GGUF that llama.cpp refuses to load ("missing tensor", "wrong shape",
"wrong number of tensors"). We check before writing, so the user hears it from us, in one line,
and no file is written. The table follows llama.cpp's `llama_model::load_tensors`, in numpy order
(rows, columns): ggml's {ne0, ne1} reversed.
"""
from __future__ import annotations

from quantdesk.core.text import shown

from .errors import ConvertError


def _layer_tensors(a, n_ff: int | None) -> tuple[dict, dict]:
    """Per-layer GGUF name suffix -> shape: (required, optional). None in a shape: any size."""
    arch, E, D = a.gguf_arch, a.n_embd, a.head_dim
    q, kv = a.n_head * D, a.n_head_kv * D
    F = n_ff
    if arch == "qwen2":
        q = E   # llama.cpp's qwen2 loader: wq is {n_embd, n_embd}
    required = {"attn_norm.weight": (E,), "ffn_norm.weight": (E,), "ffn_down.weight": (E, F)}
    if arch == "phi3":   # fused q|k|v and gate|up
        required.update({"attn_qkv.weight": (q + 2 * kv, E), "attn_output.weight": (E, E),
                         "ffn_up.weight": (None if F is None else 2 * F, E)})
        return required, {}
    required.update({"attn_q.weight": (q, E), "attn_k.weight": (kv, E), "attn_v.weight": (kv, E),
                     "attn_output.weight": (E, q), "ffn_gate.weight": (F, E), "ffn_up.weight": (F, E)})
    biases = {"attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,)}
    optional = {}
    if arch == "llama":  # llama.cpp's llama loader takes these biases when present
        optional = {**biases, "attn_output.bias": (E,), "ffn_gate.bias": (F,), "ffn_up.bias": (F,),
                    "ffn_down.bias": (E,)}
    elif arch == "qwen2":
        required.update(biases)
    if arch in ("qwen3", "gemma3"):
        required.update({"attn_q_norm.weight": (D,), "attn_k_norm.weight": (D,)})
    if arch in ("gemma2", "gemma3"):
        required.update({"post_attention_norm.weight": (E,), "post_ffw_norm.weight": (E,)})
    return required, optional


def expected_tensors(adapter, n_vocab: int | None) -> tuple[dict, dict]:
    """Full GGUF name -> shape, (required, optional), for this adapter's config."""
    E = adapter.n_embd
    n_ff = adapter.cfg.get("intermediate_size") or adapter.cfg.get("n_inner") or adapter.cfg.get("hidden_dim")
    required = {"token_embd.weight": (n_vocab, E), "output_norm.weight": (E,)}
    optional = {"output.weight": (n_vocab, E)}   # absent: llama.cpp reuses token_embd (tied)
    layer_req, layer_opt = _layer_tensors(adapter, int(n_ff) if n_ff else None)
    for i in range(adapter.n_layer):
        required.update({f"blk.{i}.{k}": v for k, v in layer_req.items()})
        optional.update({f"blk.{i}.{k}": v for k, v in layer_opt.items()})
    return required, optional


def check_tensors(adapter, shapes: dict[str, tuple[int, ...]], n_vocab: int | None,
                  extra: tuple[str, ...] = ()) -> None:
    """Refuse (ConvertError) a checkpoint llama.cpp would not load. `shapes`: GGUF name -> numpy
    shape of each tensor we would write; `extra`: names we add ourselves (rope factors)."""
    if int(adapter.cfg.get("num_local_experts") or adapter.cfg.get("num_experts") or 0) > 0:
        return   # mixture-of-experts layouts are not in this table (no such adapter today)
    arch = adapter.gguf_arch
    required, optional = expected_tensors(adapter, n_vocab)
    missing = [name for name in required if name not in shapes]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConvertError(f"the checkpoint has no {missing[0]}{more}, which llama.cpp's {arch} model needs")
    for name, shape in shapes.items():
        want = required.get(name) or optional.get(name)
        if want is None:
            if name in extra:
                continue
            raise ConvertError(f"the checkpoint's tensor {shown(name)} is not one llama.cpp's {arch} "
                               f"model reads (for {adapter.n_layer} layers)")
        if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want)):
            hint = " (the config's vocab_size)" if name in ("token_embd.weight", "output.weight") else ""
            raise ConvertError(f"tensor {name} has shape {list(shape)} but the config makes it "
                               f"{['?' if w is None else w for w in want]}{hint}")
