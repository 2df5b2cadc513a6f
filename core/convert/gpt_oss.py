"""gpt-oss (GptOssForCausalLM) as llama.cpp's `gpt-oss`, the way its converter writes it
(conversion/gpt_oss.py of the pinned llama.cpp).

The released checkpoints store every expert matrix in MXFP4 already: `*_blocks` (uint8, 16 bytes
= 32 four-bit values per block, element 2j in the low nibble of byte j) and `*_scales` (one E8M0
exponent per block). We carry them as they are into ggml's MXFP4 blocks (the exponent byte, then
16 bytes with element j in the low nibble and j + 16 in the high one): no dequantize/requantize,
so no second rounding. (Dequantized BF16 re-releases store the experts input x output instead:
transposed one expert at a time while streaming.) gate_up_proj interleaves its rows (gate = even rows, up = odd rows), and so
does its bias. Attention has biases and one learned "sink" logit per head; the MLP is SwiGLU with
clamping (llama.cpp's swiglu_oai); even layers use a sliding window.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from .families_dense import TextModel
from .source import SourceTensor
from .tensor_plan import transposed_experts

_PLAIN = re.compile(r"^(?P<p>model\.layers\.\d+\.mlp\.experts)\.(?P<w>gate_up_proj|down_proj)$")
_PACKED = re.compile(r"^(?P<p>model\.layers\.(?P<i>\d+)\.mlp\.experts)\.(?P<w>gate_up_proj|down_proj)_blocks$")
# E2M1 values, doubled as ggml keeps them (ggml halves the E8M0 scale instead)
_FP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float32)


def to_ggml_mxfp4(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(..., n_blocks, 16) HF nibbles + (..., n_blocks) exponents → (..., n_blocks * 17) ggml bytes."""
    lo, hi = blocks & 0x0F, blocks >> 4
    vals = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], 32)    # element order
    qs = vals[..., :16] | (vals[..., 16:] << 4)
    out = np.concatenate([scales[..., None], qs], axis=-1).astype(np.uint8)
    return out.reshape(*blocks.shape[:-2], blocks.shape[-2] * 17)


def mxfp4_values(raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """ggml MXFP4 bytes → float32 of `shape` (for a file type that does not keep MXFP4)."""
    b = raw.reshape(-1, 17)
    scale = np.ldexp(np.float32(0.5), b[:, 0].astype(np.int32) - 127).astype(np.float32)
    qs = b[:, 1:]
    vals = np.concatenate([_FP4[qs & 0x0F], _FP4[qs >> 4]], axis=1)
    return (vals * scale[:, None]).reshape(shape)


class GptOss(TextModel):
    gguf_arch = "gpt-oss"

    def add_arch_hparams(self, gw: Any) -> None:
        super().add_arch_hparams(gw)
        gw.add_sliding_window(int(self.cfg["sliding_window"]))
        gw.add_expert_feed_forward_length(int(self.cfg["intermediate_size"]))

    def gguf_name(self, hf_name: str) -> str:
        if hf_name.endswith("self_attn.sinks"):
            hf_name += ".weight"
        return super().gguf_name(hf_name)

    def packed_tensors(self, ckpt) -> tuple[list, set[str]]:
        out: list[SourceTensor] = []
        consumed: set[str] = set()
        for name in ckpt.names():
            plain = _PLAIN.match(name)
            if plain:   # a dequantized (BF16) release: stored input x output, gate/up interleaved
                consumed.add(name)
                base = plain["p"]
                if plain["w"] == "down_proj":
                    out.append(transposed_experts(ckpt, name, self.gguf_name(f"{base}.down_proj.weight")))
                    continue
                for h, w in ((0, "gate_proj"), (1, "up_proj")):
                    out.append(transposed_experts(ckpt, name, self.gguf_name(f"{base}.{w}.weight"),
                                                  slice(h, None, 2)))
                continue
            m = _PACKED.match(name)
            if m is None:
                bias = re.match(r"^(model\.layers\.\d+\.mlp\.experts)\.gate_up_proj_bias$", name)
                if bias:
                    out += self._bias_halves(ckpt, name, bias.group(1))
                    consumed.add(name)
                elif name.endswith("mlp.experts.down_proj_bias"):
                    out.append(self._plain(ckpt, name, name.replace("down_proj_bias", "down_proj.bias")))
                    consumed.add(name)
                continue
            scales = name.replace("_blocks", "_scales")
            consumed |= {name, scales}
            prefix, w = m["p"], m["w"]
            if w == "down_proj":
                out.append(self._mxfp4(ckpt, name, scales, f"{prefix}.down_proj.weight", None))
            else:
                out.append(self._mxfp4(ckpt, name, scales, f"{prefix}.gate_proj.weight", 0))
                out.append(self._mxfp4(ckpt, name, scales, f"{prefix}.up_proj.weight", 1))
        return out, consumed

    def _mxfp4(self, ckpt, blocks: str, scales: str, hf_target: str, half: int | None) -> SourceTensor:
        n_exp, rows, n_blocks, _ = ckpt.refs[blocks].shape
        if half is not None:
            rows //= 2
        shape = (n_exp, rows, n_blocks * 32)

        def raw() -> np.ndarray:   # one expert read and repacked at a time
            out = np.empty((n_exp, rows, n_blocks * 17), dtype=np.uint8)
            for e in range(n_exp):
                b, s = ckpt.read_raw(blocks, e, 1)[0], ckpt.read_raw(scales, e, 1)[0]
                if half is not None:   # gate = even rows, up = odd rows
                    b, s = b[half::2], s[half::2]
                out[e] = to_ggml_mxfp4(b, s)
            return out.reshape(-1)

        return SourceTensor(name=self.gguf_name(hf_target), shape=shape, dtype="MXFP4",
                            nbytes=n_exp * rows * n_blocks * 17, raw=raw,
                            load=lambda: mxfp4_values(raw(), shape))

    def _bias_halves(self, ckpt, name: str, prefix: str) -> list[SourceTensor]:
        n_exp, cols = ckpt.refs[name].shape
        return [SourceTensor(name=self.gguf_name(f"{prefix}.{w}.bias"), shape=(n_exp, cols // 2),
                             dtype="F32", nbytes=ckpt.refs[name].nbytes // 2,
                             load=lambda h=h: np.ascontiguousarray(ckpt.load(name)[:, h::2]))
                for h, w in ((0, "gate_proj"), (1, "up_proj"))]

    def _plain(self, ckpt, name: str, hf_target: str) -> SourceTensor:
        ref = ckpt.refs[name]
        return SourceTensor(name=self.gguf_name(hf_target), shape=ref.shape, dtype="F32",
                            nbytes=ref.nbytes, load=lambda: ckpt.load(name))


def gpt_oss_layer_tensors(a: GptOss) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """What llama.cpp's gpt-oss loader creates per layer (numpy shapes): (required, optional)."""
    E, D, X = a.n_embd, a.head_dim, a.n_expert
    q, kv, F = a.n_head * D, a.n_head_kv * D, int(a.cfg["intermediate_size"])
    required = {"attn_norm.weight": (E,), "post_attention_norm.weight": (E,),
                "attn_q.weight": (q, E), "attn_k.weight": (kv, E), "attn_v.weight": (kv, E),
                "attn_output.weight": (E, q), "attn_output.bias": (E,), "attn_sinks.weight": (a.n_head,),
                "ffn_gate_inp.weight": (X, E), "ffn_gate_inp.bias": (X,),
                "ffn_gate_exps.weight": (X, F, E), "ffn_up_exps.weight": (X, F, E),
                "ffn_down_exps.weight": (X, E, F), "ffn_gate_exps.bias": (X, F),
                "ffn_up_exps.bias": (X, F), "ffn_down_exps.bias": (X, E)}
    return required, {"attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,)}
