"""One small adapter per model family: config.json → GGUF keys, HF tensor names → GGUF names,
and the tensor transforms llama.cpp expects (the same choices as llama.cpp's convert_hf_to_gguf).

Both config forms of transformers are read: v4 (`rope_theta`, `rope_scaling`) and v5
(`rope_parameters`), and multimodal wrappers whose text model sits in `text_config`.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np

from quantdesk.core.text import shown

from .errors import ConvertError


def normalize_config(cfg: dict) -> dict:
    """Flatten `text_config` and fold v5 `rope_parameters` into v4-style keys."""
    out = dict(cfg)
    if isinstance(cfg.get("text_config"), dict):
        out.update(cfg["text_config"])
    rope = out.get("rope_parameters")
    if isinstance(rope, dict):
        if "full_attention" in rope and isinstance(rope["full_attention"], dict):
            rope = rope["full_attention"]  # per-layer-type form (gemma3 in v5)
        out.setdefault("rope_theta", rope.get("rope_theta"))
        if rope.get("rope_type") not in (None, "default") and not out.get("rope_scaling"):
            out["rope_scaling"] = rope
    if out.get("rope_theta") is None:
        out.pop("rope_theta", None)
    return out


def _first(cfg: dict, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


class Adapter:
    """The llama family; other families override what differs."""
    gguf_arch = "llama"
    prefer_spm = True        # tokenizer.model first when present (llama.cpp does the same)
    permute_qk = True        # llama.cpp's llama graph expects q/k rows in its rope order

    def __init__(self, cfg: dict):
        import gguf
        self.cfg = cfg
        try:
            self.n_layer = int(_first(cfg, "num_hidden_layers", "n_layer", "n_layers", "num_layers"))
            self.n_embd = int(_first(cfg, "hidden_size", "n_embd", "dim"))
            self.n_head = int(_first(cfg, "num_attention_heads", "n_head", "n_heads"))
        except (TypeError, ValueError):
            raise ConvertError("config.json lacks num_hidden_layers / hidden_size / "
                               "num_attention_heads") from None
        self.n_head_kv = int(_first(cfg, "num_key_value_heads", "n_kv_heads", default=self.n_head))
        self.head_dim = int(cfg.get("head_dim") or self.n_embd // self.n_head)
        self.n_expert = int(_first(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=0))
        arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == self.gguf_arch)
        self.name_map = gguf.get_tensor_name_map(arch, self.n_layer)

    @property
    def vocab_size(self) -> int | None:
        return self.cfg.get("vocab_size")

    # --- hyper-parameters ------------------------------------------------------------------
    def add_hparams(self, gw: Any) -> None:
        c = self.cfg
        gw.add_block_count(self.n_layer)
        n_ctx = _first(c, "max_position_embeddings", "n_ctx", "n_positions", "max_length")
        if n_ctx is not None:
            gw.add_context_length(int(n_ctx))
        gw.add_embedding_length(self.n_embd)
        if (n_ff := _first(c, "intermediate_size", "n_inner", "hidden_dim")) is not None:
            gw.add_feed_forward_length(int(n_ff))
        gw.add_head_count(self.n_head)
        gw.add_head_count_kv(self.n_head_kv)
        if c.get("rope_theta") is not None:
            gw.add_rope_freq_base(float(c["rope_theta"]))
        if (eps := _first(c, "rms_norm_eps", "norm_eps")) is not None:
            gw.add_layer_norm_rms_eps(float(eps))
        if (eps := _first(c, "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon")) is not None:
            gw.add_layer_norm_eps(float(eps))
        if c.get("head_dim") is not None:
            gw.add_key_length(int(c["head_dim"]))
            gw.add_value_length(int(c["head_dim"]))
        if self.n_expert:
            gw.add_expert_count(self.n_expert)
            if (used := _first(c, "num_experts_per_tok", "num_experts_per_token", "top_k_experts")) is not None:
                gw.add_expert_used_count(int(used))
            if c.get("moe_intermediate_size") is not None:
                gw.add_expert_feed_forward_length(int(c["moe_intermediate_size"]))
            if c.get("shared_expert_intermediate_size") is not None:
                gw.add_expert_shared_feed_forward_length(int(c["shared_expert_intermediate_size"]))
        self.add_arch_hparams(gw)

    def add_arch_hparams(self, gw: Any) -> None:
        if self.vocab_size:
            gw.add_vocab_size(int(self.vocab_size))
        gw.add_rope_dimension_count(self.head_dim)
        add_rope_scaling(gw, self.cfg.get("rope_scaling") or {})

    # --- tensors ---------------------------------------------------------------------------
    def skip(self, hf_name: str) -> bool:
        return hf_name.endswith(("rotary_emb.inv_freq", ".masked_bias"))

    def gguf_name(self, hf_name: str) -> str:
        name = self.name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConvertError(f"cannot map tensor {shown(hf_name)} to a {self.gguf_arch} GGUF tensor")
        return name

    def transform(self, hf_name: str, data: np.ndarray) -> np.ndarray:
        if self.permute_qk and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            return _permute(data, self.n_head)
        if self.permute_qk and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            return _permute(data, self.n_head_kv)
        return data

    def split(self, hf_name: str, shape: tuple[int, ...]) -> list[tuple[str, int, int]] | None:
        """A fused tensor llama.cpp wants as several: [(gguf name, first row, end row) on axis -2]."""
        return None

    def packed_tensors(self, ckpt) -> tuple[list, set[str]]:
        """Tensors the family stores in a form of its own (gpt-oss's MXFP4 blocks + scales), as
        SourceTensors, and the checkpoint names they consume."""
        return [], set()

    def derive(self, hf_name: str, shape: tuple[int, ...]
               ) -> list[tuple[str, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]] | None:
        """A tensor llama.cpp wants cut and reshaped into several (DeepSeek's kv_b_proj → k_b, v_b):
        [(gguf name, numpy shape, whole HF array → that tensor)]; each is loaded whole."""
        return None

    def row_order(self, hf_name: str, n_rows: int) -> np.ndarray | None:
        """For a 2-D tensor whose transform only reorders rows: the source row of each output row."""
        if self.permute_qk and hf_name.endswith("q_proj.weight"):
            return _permute(np.arange(n_rows), self.n_head)
        if self.permute_qk and hf_name.endswith("k_proj.weight"):
            return _permute(np.arange(n_rows), self.n_head_kv)
        return None

    def extra_tensors(self) -> Iterator[tuple[str, Callable[[], np.ndarray], tuple[int, ...]]]:
        """Tensors llama.cpp wants that the checkpoint does not hold (Llama 3.1 rope factors)."""
        scaling = self.cfg.get("rope_scaling") or {}
        if str(scaling.get("rope_type", "")).lower() != "llama3":
            return
        dim = self.head_dim
        base = float(self.cfg.get("rope_theta", 10000.0))
        factor = float(scaling.get("factor", 8.0))
        low, high = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
        old_ctx = float(scaling.get("original_max_position_embeddings", 8192))

        def rope_freqs() -> np.ndarray:
            freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
            out = []
            for f in freqs:
                wavelen = 2 * math.pi / float(f)
                if wavelen < old_ctx / high:
                    out.append(1.0)
                elif wavelen > old_ctx / low:
                    out.append(factor)
                else:
                    smooth = (old_ctx / wavelen - low) / (high - low)
                    out.append(1 / ((1 - smooth) / factor + smooth))
            return np.asarray(out, dtype=np.float32)

        yield "rope_freqs.weight", rope_freqs, (dim // 2,)


def add_rope_scaling(gw: Any, scaling: dict, *, yarn_details: bool = False) -> None:
    """Linear or YaRN rope scaling keys; `yarn_details`: also YaRN's ext/attn factors and betas
    (llama.cpp's TextModel writes them; its Llama converter predates them)."""
    import gguf
    kind = str(scaling.get("rope_type") or scaling.get("type") or "").lower()
    if kind == "linear" and scaling.get("factor"):
        gw.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        gw.add_rope_scaling_factor(float(scaling["factor"]))
    if kind != "yarn" or not scaling.get("factor"):
        return
    gw.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    gw.add_rope_scaling_factor(float(scaling["factor"]))
    if scaling.get("original_max_position_embeddings"):
        gw.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))
    if not yarn_details:
        return
    if scaling.get("extrapolation_factor") is not None:
        gw.add_rope_scaling_yarn_ext_factor(float(scaling["extrapolation_factor"]))
    attn = scaling.get("attention_factor", scaling.get("attn_factor"))
    if attn is not None:
        gw.add_rope_scaling_yarn_attn_factor(float(attn))
    if scaling.get("beta_fast") is not None:
        gw.add_rope_scaling_yarn_beta_fast(float(scaling["beta_fast"]))
    if scaling.get("beta_slow") is not None:
        gw.add_rope_scaling_yarn_beta_slow(float(scaling["beta_slow"]))


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Interleaved → half-split rotary layout, per head (llama.cpp's LlamaModel.permute)."""
    shape = w.shape
    return (w.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])
            .swapaxes(1, 2).reshape(shape))


class Qwen2(Adapter):
    gguf_arch = "qwen2"
    prefer_spm = False
    permute_qk = False

    def add_arch_hparams(self, gw: Any) -> None:
        import gguf
        scaling = self.cfg.get("rope_scaling") or {}
        if str(scaling.get("rope_type") or scaling.get("type") or "") == "yarn" and scaling.get("factor"):
            gw.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            gw.add_rope_scaling_factor(float(scaling["factor"]))
            if scaling.get("original_max_position_embeddings"):
                gw.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))


class Qwen3(Qwen2):
    gguf_arch = "qwen3"


class Gemma2(Adapter):
    gguf_arch = "gemma2"
    permute_qk = False

    def add_arch_hparams(self, gw: Any) -> None:
        c = self.cfg
        if c.get("head_dim") is None:  # else already written with the common keys
            gw.add_key_length(self.head_dim)
            gw.add_value_length(self.head_dim)
        if c.get("attn_logit_softcapping") is not None:
            gw.add_attn_logit_softcapping(float(c["attn_logit_softcapping"]))
        if c.get("final_logit_softcapping") is not None:
            gw.add_final_logit_softcapping(float(c["final_logit_softcapping"]))
        if c.get("sliding_window") is not None:
            gw.add_sliding_window(int(c["sliding_window"]))
        gw.add_add_space_prefix(False)

    def skip(self, hf_name: str) -> bool:
        # Gemma ties the output to the embeddings; llama.cpp never reads lm_head.
        return super().skip(hf_name) or hf_name == "lm_head.weight"

    def transform(self, hf_name: str, data: np.ndarray) -> np.ndarray:
        # Gemma's RMSNorm multiplies by (1 + w); llama.cpp's multiplies by w.
        if hf_name.endswith("norm.weight"):
            return data + np.float32(1.0)
        return data


class Gemma3(Gemma2):
    gguf_arch = "gemma3"

    def add_arch_hparams(self, gw: Any) -> None:
        import gguf
        c = self.cfg
        if c.get("head_dim") is None:
            gw.add_key_length(self.head_dim)
            gw.add_value_length(self.head_dim)
        if c.get("final_logit_softcapping"):
            gw.add_final_logit_softcapping(float(c["final_logit_softcapping"]))
        if c.get("sliding_window_pattern") != 1 and c.get("sliding_window") is not None:
            gw.add_sliding_window(int(c["sliding_window"]))
        scaling = c.get("rope_scaling") or {}
        if scaling.get("rope_type") == "linear":
            gw.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            gw.add_rope_scaling_factor(float(scaling["factor"]))
        gw.add_add_space_prefix(False)

    def skip(self, hf_name: str) -> bool:
        # A multimodal checkpoint: we convert its text model only.
        return super().skip(hf_name) or "vision_tower" in hf_name or "multi_modal_projector" in hf_name

    def gguf_name(self, hf_name: str) -> str:
        return super().gguf_name(hf_name.replace("language_model.", ""))


class Phi3(Adapter):
    gguf_arch = "phi3"
    permute_qk = False  # phi3 keeps its fused qkv_proj and gate_up_proj as llama.cpp expects

    def add_arch_hparams(self, gw: Any) -> None:
        c = self.cfg
        rot = float(c.get("partial_rotary_factor", 1.0))
        gw.add_rope_dimension_count(int(rot * self.n_embd) // self.n_head)
        if c.get("original_max_position_embeddings"):
            gw.add_rope_scaling_orig_ctx_len(int(c["original_max_position_embeddings"]))
        gw.add_sliding_window(int(c.get("sliding_window") or 0))

    def extra_tensors(self):
        scaling = self.cfg.get("rope_scaling") or {}
        long_f, short_f = scaling.get("long_factor"), scaling.get("short_factor")
        if not long_f or not short_f:
            return
        yield ("rope_factors_long.weight", lambda: np.asarray(long_f, np.float32), (len(long_f),))
        yield ("rope_factors_short.weight", lambda: np.asarray(short_f, np.float32), (len(short_f),))
