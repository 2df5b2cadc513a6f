"""What the memory model needs to know about a model: dims per layer and bytes per tensor group.

A `ModelProfile` comes from a GGUF's metadata and tensor table (a local file, or the header prefix
of a remote one) or from an HF config.json. `retype()` answers "what if this model were Q5_K_M":
it applies llama.cpp's quantization mix (llama-quant.cpp, `llama_tensor_get_type`, main rules) to
each tensor's shape, so one header gives size and memory for every quant type.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T, LlamaFileType

_BLK = re.compile(r"^blk\.(\d+)\.")
# File type -> the tensor type most weights get (llama-quant.cpp's default_type).
BASE_TYPE = {"F32": T.F32, "F16": T.F16, "BF16": T.BF16, "Q8_0": T.Q8_0, "Q4_0": T.Q4_0,
             "Q4_1": T.Q4_1, "Q5_0": T.Q5_0, "Q5_1": T.Q5_1, "Q2_K": T.Q2_K, "Q3_K_S": T.Q3_K,
             "Q3_K_M": T.Q3_K, "Q3_K_L": T.Q3_K, "Q4_K_S": T.Q4_K, "Q4_K_M": T.Q4_K,
             "Q5_K_S": T.Q5_K, "Q5_K_M": T.Q5_K, "Q6_K": T.Q6_K}
# K-quants need rows that are a multiple of 256; llama.cpp falls back to these (same bits).
_FALLBACK = {T.Q2_K: T.IQ4_NL, T.Q3_K: T.IQ4_NL, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}
# Archs whose sliding-window layer pattern llama.cpp hard-codes (llama-model.cpp set_swa_pattern):
# layer il slides iff il % n < n - 1. Files may also carry `<arch>.attention.sliding_window_pattern`.
SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4, "gpt-oss": 2, "exaone4": 4}


_SIZES = {int(k): v for k, v in GGML_QUANT_SIZES.items()}


def tensor_bytes(ggml_type: int, shape) -> int:
    block, size = _SIZES[int(ggml_type)]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


def file_type_name(metadata: dict, tensors) -> str:
    ft = metadata.get("general.file_type")
    if isinstance(ft, int):
        try:
            name = LlamaFileType(ft).name
            return name.removeprefix("MOSTLY_").replace("ALL_F32", "F32")
        except ValueError:
            pass
    weights = [t for t in tensors if len(t[1]) >= 2]
    if not weights:
        return "unknown"
    by_type: dict[int, int] = {}
    for _, shape, ty in weights:
        by_type[ty] = by_type.get(ty, 0) + tensor_bytes(ty, shape)
    return T(max(by_type, key=by_type.get)).name


@dataclass(frozen=True)
class ModelProfile:
    name: str
    architecture: str
    file_type: str
    n_layer: int
    n_embd: int
    n_vocab: int
    n_ctx_train: int
    n_ff: int
    n_head: tuple[int, ...]        # per layer
    n_head_kv: tuple[int, ...]     # per layer (0: a layer without KV cache)
    head_dim_k: int
    head_dim_v: int
    swa_window: int                # 0: no sliding-window attention
    swa_layers: tuple[bool, ...]   # per layer: True when the layer uses the sliding window
    tensors: tuple[tuple[str, tuple[int, ...], int], ...]   # (name, shape, ggml type)
    n_merges: int = 0              # BPE merge rules (llama.cpp keeps them in memory)

    @property
    def parameters(self) -> int:
        total = 0
        for _, shape, _ in self.tensors:
            n = 1
            for d in shape:
                n *= d
            total += n
        return total

    @property
    def size_bytes(self) -> int:
        return sum(tensor_bytes(ty, shape) for _, shape, ty in self.tensors)

    def group_bytes(self) -> tuple[list[int], int, int, int]:
        """(bytes per layer, token_embd bytes, output bytes, other bytes). With tied embeddings
        llama.cpp loads token_embd a second time as the output matrix: output bytes = its size."""
        layers, embd, out, other = self._groups
        return list(layers), embd, out, other

    @cached_property
    def _groups(self) -> tuple[tuple[int, ...], int, int, int]:  # the planner asks many times
        layers = [0] * self.n_layer
        embd = out = other = 0
        has_output = False
        for name, shape, ty in self.tensors:
            b = tensor_bytes(ty, shape)
            m = _BLK.match(name)
            if m and int(m.group(1)) < self.n_layer:
                layers[int(m.group(1))] += b
            elif name == "token_embd.weight":
                embd += b
            elif name.startswith("output"):
                out += b
                has_output = has_output or name == "output.weight"
            else:
                other += b
        if not has_output:
            out += embd
        return tuple(layers), embd, out, other

    def layer_repack_bytes(self, repack_types: frozenset[int]) -> list[int]:
        """Per layer: bytes of matrices the CPU backend copies into its repacked layout."""
        cache = self.__dict__.setdefault("_repack_cache", {})  # frozen: bypass __setattr__
        if repack_types not in cache:
            cache[repack_types] = self._repack(repack_types)
        return list(cache[repack_types])

    @cached_property
    def tied(self) -> bool:
        """No output.weight: llama.cpp uses token_embd as the output matrix."""
        return not any(n == "output.weight" for n, _, _ in self.tensors)

    def _repack(self, repack_types: frozenset[int]) -> list[int]:
        layers = [0] * self.n_layer
        for name, shape, ty in self.tensors:
            m = _BLK.match(name)
            if m and ty in repack_types and len(shape) == 2 and shape[1] % 8 == 0:
                if int(m.group(1)) < self.n_layer:
                    layers[int(m.group(1))] += tensor_bytes(ty, shape)
        return layers


def _array_len(value) -> int:
    """Length of a header array, whether kept as a list or skipped as an ArrayInfo."""
    if isinstance(value, list):
        return len(value)
    return int(getattr(value, "count", 0) or 0)


def _per_layer(value, n_layer: int, default: int) -> tuple[int, ...]:
    if isinstance(value, list):
        vals = [int(v) for v in value[:n_layer]]
        return tuple(vals + [vals[-1] if vals else default] * (n_layer - len(vals)))
    return (int(value) if value is not None else default,) * n_layer


def _swa_layers(arch: str, metadata: dict, n_layer: int, window: int) -> tuple[bool, ...]:
    if not window:
        return (False,) * n_layer
    pattern = metadata.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, list):
        return tuple(bool(pattern[i % len(pattern)]) for i in range(n_layer))
    n = int(pattern) if isinstance(pattern, int) and pattern > 0 else SWA_PATTERN.get(arch, 1)
    if n <= 1:
        return (True,) * n_layer  # every layer slides (e.g. mistral's original window)
    return tuple(i % n < n - 1 for i in range(n_layer))


def profile_from_header(metadata: dict, tensors, name: str | None = None) -> ModelProfile:
    """Profile from parsed GGUF metadata and a tensor table of (name, shape, ggml type) or
    TensorInfo. This is the entry point for a remote file read by its first megabytes."""
    rows = tuple((t.name, tuple(t.shape), int(t.ggml_type)) if hasattr(t, "ggml_type")
                 else (t[0], tuple(t[1]), int(t[2])) for t in tensors)
    arch = str(metadata.get("general.architecture", "llama"))

    def key(k, default=None):
        return metadata.get(f"{arch}.{k}", default)

    n_layer = int(key("block_count", 0) or 0)
    n_embd = int(key("embedding_length", 0) or 0)
    n_head = _per_layer(key("attention.head_count"), n_layer, 1)
    n_head_kv = _per_layer(key("attention.head_count_kv"), n_layer, n_head[0] if n_head else 1)
    head_dim = n_embd // max(n_head[0], 1) if n_head else 0
    vocab = key("vocab_size")
    if vocab is None:
        toks = metadata.get("tokenizer.ggml.tokens")
        vocab = _array_len(toks)
    if not vocab:
        vocab = next((s[1] for n, s, _ in rows if n == "token_embd.weight" and len(s) == 2), 0)
    merges = metadata.get("tokenizer.ggml.merges")
    n_merges = _array_len(merges)
    n_ff = key("feed_forward_length", 0)
    window = int(key("attention.sliding_window", 0) or 0)
    return ModelProfile(
        name=name or str(metadata.get("general.name", "model")), architecture=arch,
        file_type=file_type_name(metadata, rows), n_layer=n_layer, n_embd=n_embd,
        n_vocab=int(vocab), n_ctx_train=int(key("context_length", 0) or 0),
        n_ff=max(n_ff) if isinstance(n_ff, list) else int(n_ff or 0),
        n_head=n_head, n_head_kv=n_head_kv,
        head_dim_k=int(key("attention.key_length", head_dim) or head_dim),
        head_dim_v=int(key("attention.value_length", head_dim) or head_dim),
        swa_window=window, swa_layers=_swa_layers(arch, metadata, n_layer, window), tensors=rows,
        n_merges=int(n_merges))


# ---- what-if: the same model in another quant type ----------------------------------------------

def _more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _quantized(name: str, shape) -> bool:
    return (name.endswith(".weight") and len(shape) >= 2 and "ffn_gate_inp" not in name
            and "norm" not in name and "pos_embd" not in name and "token_types" not in name)


def tensor_type_for(name: str, shape, ftype: str, n_layer: int, has_output: bool,
                    n_gqa: int = 1) -> int:
    """The type llama.cpp's quantizer gives one tensor for a target file type (main rules of
    llama_tensor_get_type: output/embeddings, attn_v, ffn_down, attn_output; K-quant fallbacks)."""
    base = BASE_TYPE[ftype]
    if not _quantized(name, shape):
        return T.F32
    if ftype in ("F32", "F16", "BF16"):
        return base
    m = _BLK.match(name)
    i = int(m.group(1)) if m else 0
    new = base
    if name == "output.weight" or (not has_output and name == "token_embd.weight"):
        if ftype != "Q8_0":
            new = T.Q8_0 if shape[0] % 256 else T.Q6_K
    elif "attn_v." in name:
        if ftype == "Q2_K":
            new = T.Q4_K if n_gqa >= 4 else T.Q3_K
        elif ftype == "Q3_K_M":
            new = T.Q5_K if i < 2 else T.Q4_K
        elif ftype == "Q3_K_L":
            new = T.Q5_K
        elif ftype in ("Q4_K_M", "Q5_K_M") and _more_bits(i, n_layer):
            new = T.Q6_K
        elif ftype == "Q4_K_S" and i < 4:
            new = T.Q5_K
    elif "ffn_down" in name:
        if ftype == "Q2_K":
            new = T.Q3_K
        elif ftype == "Q3_K_M":
            new = T.Q5_K if i < n_layer // 16 else T.Q4_K
        elif ftype == "Q3_K_L":
            new = T.Q5_K
        elif ftype in ("Q4_K_M", "Q5_K_M") and _more_bits(i, n_layer):
            new = T.Q6_K
        elif ftype == "Q4_K_S" and i < n_layer // 8:
            new = T.Q5_K
    elif "attn_output" in name:
        new = {"Q2_K": T.Q3_K, "Q3_K_M": T.Q4_K, "Q3_K_L": T.Q5_K}.get(ftype, new)
    block = GGML_QUANT_SIZES[T(new)][0]
    if shape[0] % block:
        new = _FALLBACK.get(new, new)
        if shape[0] % GGML_QUANT_SIZES[T(new)][0]:
            new = T.F16
    return int(new)


def retype(profile: ModelProfile, ftype: str) -> ModelProfile:
    """The profile this model would have as `ftype` ("Q4_K_M", "Q8_0", ...)."""
    ftype = ftype.upper()
    if ftype == profile.file_type:
        return profile
    if ftype not in BASE_TYPE:
        raise ValueError(f"cannot estimate quant type {ftype!r}; known: {', '.join(BASE_TYPE)}")
    has_output = any(n == "output.weight" for n, _, _ in profile.tensors)
    n_gqa = profile.n_head[0] // max(profile.n_head_kv[0], 1) if profile.n_head else 1
    rows = tuple((n, s, tensor_type_for(n, s, ftype, profile.n_layer, has_output, n_gqa))
                 for n, s, _ in profile.tensors)
    return replace(profile, file_type=ftype, tensors=rows)
