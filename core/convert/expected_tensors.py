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


# Per GGUF architecture, what differs from the llama layer (pre-norms, q/k/v/o, gated FFN).
_POST_NORMS = ("post_attention_norm", "post_ffw_norm")
_LAYOUT = {
    "qwen2": dict(bias="required", q_is_embd=True),
    "qwen2moe": dict(bias="required", shared_expert=True),
    "qwen3": dict(qk_norm="head"), "qwen3moe": dict(qk_norm="head"),
    "qwen3vl": dict(qk_norm="head"), "qwen3vlmoe": dict(qk_norm="head"),
    "gemma2": dict(norms=("attn_norm", "ffn_norm") + _POST_NORMS),
    "gemma3": dict(norms=("attn_norm", "ffn_norm") + _POST_NORMS, qk_norm="head"),
    "olmo2": dict(norms=_POST_NORMS, qk_norm="full"),
    "olmoe": dict(qk_norm="full"),
    "arcee": dict(gated=False),
    "starcoder2": dict(norm_bias=True, bias="qkv", out_bias=True, gated=False),
    "command-r": dict(norms=("attn_norm",), bias="qkv", tied_only=True),
    "cohere2": dict(norms=("attn_norm",), tied_only=True),
    "glm4": dict(norms=("attn_norm", "ffn_norm") + _POST_NORMS, bias="qkv", fused_up=True),
    "exaone": dict(bias="qkv"),
    "qwen2vl": dict(bias="qkv"),
    "mistral3": dict(bias="optional"),
    "granite": dict(bias="output"), "granitemoe": dict(bias="output"),
    "llama": dict(bias="optional"),
}


def _layer_tensors(a, n_ff: int | None) -> tuple[dict, dict]:
    """Per-layer GGUF name suffix -> shape: (required, optional). None in a shape: any size."""
    arch, E, D = a.gguf_arch, a.n_embd, a.head_dim
    q, kv = a.n_head * D, a.n_head_kv * D
    F = n_ff
    if arch == "phi3":   # fused q|k|v and gate|up
        return {"attn_norm.weight": (E,), "ffn_norm.weight": (E,), "ffn_down.weight": (E, F),
                "attn_qkv.weight": (q + 2 * kv, E), "attn_output.weight": (E, E),
                "ffn_up.weight": (None if F is None else 2 * F, E)}, {}
    lay = _LAYOUT.get(arch, {})
    if lay.get("q_is_embd"):
        q = E   # llama.cpp's qwen2 loader: wq is {n_embd, n_embd}
    required = {f"{n}.weight": (E,) for n in lay.get("norms", ("attn_norm", "ffn_norm"))}
    required.update({"attn_q.weight": (q, E), "attn_k.weight": (kv, E), "attn_v.weight": (kv, E),
                     "attn_output.weight": (E, q)})
    optional: dict = {}
    biases = {"attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,)}
    out_biases = {"attn_output.bias": (E,), "ffn_gate.bias": (F,), "ffn_up.bias": (F,), "ffn_down.bias": (E,)}
    if lay.get("bias") == "required":
        required.update(biases)
    elif lay.get("bias") == "optional":   # llama.cpp's llama loader takes these when present
        optional.update({**biases, **out_biases})
    elif lay.get("bias") == "output":
        optional.update(out_biases)
    elif lay.get("bias") == "qkv":
        optional.update(biases)
    if lay.get("out_bias"):   # StarCoder2: every output projection has its bias
        required.update({"attn_output.bias": (E,), "ffn_up.bias": (F,), "ffn_down.bias": (E,)})
    if lay.get("norm_bias"):
        required.update({f"{n}.bias": (E,) for n in lay.get("norms", ("attn_norm", "ffn_norm"))})
    if lay.get("qk_norm") == "head":
        required.update({"attn_q_norm.weight": (D,), "attn_k_norm.weight": (D,)})
    elif lay.get("qk_norm") == "full":
        required.update({"attn_q_norm.weight": (q,), "attn_k_norm.weight": (kv,)})
    if arch == "command-r" and a.cfg.get("use_qk_norm") and a.n_layer >= 64:
        # Command R+ (08-2024): per-head norms, which llama.cpp reads for 64 layers and more
        required.update({"attn_q_norm.weight": (a.n_head, D), "attn_k_norm.weight": (a.n_head_kv, D)})
    if a.n_expert:
        X, Fe = a.n_expert, int(a.cfg.get("moe_intermediate_size") or F or 0) or None
        required.update({"ffn_gate_inp.weight": (X, E), "ffn_gate_exps.weight": (X, Fe, E),
                         "ffn_up_exps.weight": (X, Fe, E), "ffn_down_exps.weight": (X, E, Fe)})
        if lay.get("shared_expert"):
            Fs = a.cfg.get("shared_expert_intermediate_size")
            required.update({"ffn_gate_inp_shexp.weight": (E,), "ffn_gate_shexp.weight": (Fs, E),
                             "ffn_up_shexp.weight": (Fs, E), "ffn_down_shexp.weight": (E, Fs)})
        return required, optional
    up = None if F is None else (2 * F if lay.get("fused_up") else F)   # GLM-4: gate|up fused
    required.update({"ffn_up.weight": (up, E), "ffn_down.weight": (E, F)})
    if lay.get("gated", True) and not lay.get("fused_up"):
        required["ffn_gate.weight"] = (F, E)
    return required, optional


def expected_tensors(adapter, n_vocab: int | None) -> tuple[dict, dict]:
    """Full GGUF name -> shape, (required, optional), for this adapter's config."""
    E = adapter.n_embd
    n_ff = adapter.cfg.get("intermediate_size") or adapter.cfg.get("n_inner") or adapter.cfg.get("hidden_dim")
    required = {"token_embd.weight": (n_vocab, E), "output_norm.weight": (E,)}
    optional = {"output.weight": (n_vocab, E)}   # absent: llama.cpp reuses token_embd (tied)
    lay = _LAYOUT.get(adapter.gguf_arch, {})
    if lay.get("tied_only"):
        optional = {}                            # Command-R: llama.cpp never reads an output
    if lay.get("norm_bias"):
        required["output_norm.bias"] = (E,)
    if adapter.gguf_arch in ("deepseek2", "llama4", "glm4moe"):   # dense and MoE layers mixed
        from .deepseek import deepseek2_layer_tensors
        from .glm4_moe import glm4moe_layer_tensors
        from .llama4 import llama4_layer_tensors
        per_layer = {"deepseek2": deepseek2_layer_tensors, "llama4": llama4_layer_tensors,
                     "glm4moe": glm4moe_layer_tensors}[adapter.gguf_arch]
        for i in range(adapter.n_layer):
            layer = per_layer(adapter, i)
            if adapter.gguf_arch == "glm4moe":   # (required, optional): q/k norms, MTP copies
                layer, layer_opt = layer
                optional.update({f"blk.{i}.{k}": v for k, v in layer_opt.items()})
            required.update({f"blk.{i}.{k}": v for k, v in layer.items()})
            if "ffn_gate_inp.weight" in layer and adapter.gguf_arch == "deepseek2":
                optional[f"blk.{i}.exp_probs_b.bias"] = (adapter.n_expert,)
        return required, optional
    if adapter.gguf_arch == "gpt-oss":
        from .gpt_oss import gpt_oss_layer_tensors
        layer_req, layer_opt = gpt_oss_layer_tensors(adapter)
    else:
        layer_req, layer_opt = _layer_tensors(adapter, int(n_ff) if n_ff else None)
    for i in range(adapter.n_layer):
        required.update({f"blk.{i}.{k}": v for k, v in layer_req.items()})
        optional.update({f"blk.{i}.{k}": v for k, v in layer_opt.items()})
    return required, optional


def check_tensors(adapter, shapes: dict[str, tuple[int, ...]], n_vocab: int | None,
                  extra: tuple[str, ...] = ()) -> None:
    """Refuse (ConvertError) a checkpoint llama.cpp would not load. `shapes`: GGUF name -> numpy
    shape of each tensor we would write; `extra`: names we add ourselves (rope factors)."""
    arch = adapter.gguf_arch
    required, optional = expected_tensors(adapter, n_vocab)
    trunk = getattr(adapter, "n_trunk", adapter.n_layer)
    if trunk < adapter.n_layer and f"blk.{trunk}.nextn.eh_proj.weight" not in shapes:
        # config.json counts MTP layers the checkpoint does not hold: llama.cpp's loader then
        # takes the file as trunk-only (its probe is that tensor), every MTP tensor optional
        mtp = [n for n in required if n.startswith("blk.") and int(n.split(".")[1]) >= trunk]
        optional.update({n: required.pop(n) for n in mtp})
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
        while len(shape) > len(want) and shape[0] == 1:   # (1, n) is ggml's {n} (ggml_n_dims)
            shape = shape[1:]
        if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want)):
            hint = " (the config's vocab_size)" if name in ("token_embd.weight", "output.weight") else ""
            raise ConvertError(f"tensor {name} has shape {list(shape)} but the config makes it "
                               f"{['?' if w is None else w for w in want]}{hint}")
