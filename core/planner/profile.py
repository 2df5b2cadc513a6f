"""What the memory model needs to know about a model: dims per layer and bytes per tensor group.

A `ModelProfile` comes from a GGUF's metadata and tensor table (a local file, or the header prefix
of a remote one), from an HF config.json, or from an opened quantizer source. `retype()` answers
"what if this model were Q5_K_M": the quantizer's own `tensor_types` (core/quantize/mix.py, llama.cpp's
mix) applied to the tensor table, so one header gives size and memory for every quant type and the
size promised is the size the quantizer writes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T, LlamaFileType

from quantdesk.core.convert.source import ModelParams
from quantdesk.core.gguf.header import metadata_count
from quantdesk.core.gguf.limits import LIMITS
from quantdesk.core.quantize.mix import file_type as mix_file_type, tensor_types
from quantdesk.core.text import shown

from .errors import PlannerError

_BLK = re.compile(r"^blk\.([0-9]+)\.")
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
    head_dim_v: int                # 0: no V cache (llama.cpp's MLA keeps K only)
    swa_window: int                # 0: no sliding-window attention
    swa_layers: tuple[bool, ...]   # per layer: True when the layer uses the sliding window
    tensors: tuple[tuple[str, tuple[int, ...], int], ...]   # (name, ggml shape ne0 first, ggml type)
    n_merges: int = 0              # BPE merge rules (llama.cpp keeps them in memory)
    n_expert: int = 0              # MoE experts per layer (llama.cpp's mix looks at it)
    # The last n_nextn of the n_layer blocks are multi-token-prediction layers (GLM-4.5's MTP):
    # block_count and the offload count include them (llama.cpp's n_layer_all), but plain
    # inference neither loads their weights (load_mtp off) nor gives them a KV cache.
    n_nextn: int = 0

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
            if m and self.n_layer - self.n_nextn <= int(m.group(1)) < self.n_layer:
                continue   # an MTP layer: in the file, never loaded (llama.cpp skips it)
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
                if int(m.group(1)) < self.n_layer - self.n_nextn:
                    layers[int(m.group(1))] += tensor_bytes(ty, shape)
        return layers


def _array_len(value) -> int:
    """Length of a header array, whether kept as a list or skipped as an ArrayInfo."""
    if isinstance(value, list):
        return len(value)
    return metadata_count(getattr(value, "count", 0))


def _per_layer(value, n_layer: int, default: int) -> tuple[int, ...]:
    """A per-layer count (a scalar for every layer, or a list), item by item through
    metadata_count: an item that cannot be a count takes `default`."""
    if isinstance(value, list):
        vals = [metadata_count(v, default) for v in value[:n_layer]]
        return tuple(vals + [vals[-1] if vals else default] * (n_layer - len(vals)))
    return (metadata_count(value, default),) * n_layer


def _swa_layers(arch: str, metadata: dict, n_layer: int, window: int) -> tuple[bool, ...]:
    if not window:
        return (False,) * n_layer
    pattern = metadata.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, list) and pattern:
        return tuple(bool(pattern[i % len(pattern)]) for i in range(n_layer))
    n = int(pattern) if isinstance(pattern, int) and pattern > 0 else SWA_PATTERN.get(arch, 1)
    if n <= 1:
        return (True,) * n_layer  # every layer slides (e.g. mistral's original window)
    return tuple(i % n < n - 1 for i in range(n_layer))


def profile_from_header(metadata: dict, tensors, name: str | None = None,
                        file_name: str = "the model") -> ModelProfile:
    """Profile from parsed GGUF metadata and a tensor table of (name, shape, ggml type) or
    TensorInfo. This is the entry point for a remote file read by its first megabytes.

    Metadata is whatever the file says: every number goes through metadata_count (NaN, inf,
    strings, lists where a count belongs take the default), and a block count past llama.cpp's
    LLAMA_MAX_LAYERS raises PlannerError before any per-layer table is built."""
    rows = tuple((t.name, tuple(t.shape), int(t.ggml_type)) if hasattr(t, "ggml_type")
                 else (t[0], tuple(t[1]), int(t[2])) for t in tensors)
    arch = metadata.get("general.architecture")
    arch = arch if isinstance(arch, str) and arch else "llama"

    def count(k, default=0):
        return metadata_count(metadata.get(f"{arch}.{k}"), default)

    n_layer = count("block_count")
    if n_layer > LIMITS.max_layers:
        raise PlannerError(f"{shown(file_name)}: cannot plan a model of {n_layer:,} layers; "
                           f"llama.cpp loads at most {LIMITS.max_layers}")
    n_embd = count("embedding_length")
    n_head = _per_layer(metadata.get(f"{arch}.attention.head_count"), n_layer, 1)
    n_head_kv = _per_layer(metadata.get(f"{arch}.attention.head_count_kv"), n_layer,
                           n_head[0] if n_head else 1)
    n_nextn = min(count("nextn_predict_layers"), n_layer)
    if n_nextn < n_layer:   # (a file of MTP layers only is cached whole, as llama.cpp does)
        n_head_kv = n_head_kv[:n_layer - n_nextn] + (0,) * n_nextn
    else:
        n_nextn = 0
    head_dim = n_embd // max(n_head[0], 1) if n_head else 0
    vocab = count("vocab_size", None)
    if vocab is None:
        vocab = _array_len(metadata.get("tokenizer.ggml.tokens"))
    if not vocab:
        vocab = next((s[1] for n, s, _ in rows if n == "token_embd.weight" and len(s) == 2), 0)
    window = count("attention.sliding_window")
    given_name = metadata.get("general.name")
    head_dim_v = count("attention.value_length", head_dim) or head_dim
    if count("attention.key_length_mla") and count("attention.value_length_mla"):
        head_dim_v = 0   # MLA (DeepSeek): llama.cpp caches the latent as K only, no V cache
    return ModelProfile(
        name=name or (given_name if isinstance(given_name, str) else "model"), architecture=arch,
        file_type=file_type_name(metadata, rows), n_layer=n_layer, n_embd=n_embd,
        n_vocab=vocab, n_ctx_train=count("context_length"),
        n_ff=count("feed_forward_length"),
        n_head=n_head, n_head_kv=n_head_kv,
        head_dim_k=count("attention.key_length", head_dim) or head_dim,
        head_dim_v=head_dim_v,
        swa_window=window, swa_layers=_swa_layers(arch, metadata, n_layer, window), tensors=rows,
        n_merges=_array_len(metadata.get("tokenizer.ggml.merges")),
        n_expert=count("expert_count"), n_nextn=n_nextn)


# ---- what-if: the same model in another quant type ----------------------------------------------

def mix_params(profile: ModelProfile) -> ModelParams:
    """The hyper-parameters llama.cpp's type mix looks at, from a profile."""
    return ModelParams(arch=profile.architecture, n_layer=profile.n_layer,
                       n_head=profile.n_head[0] if profile.n_head else 0,
                       n_head_kv=profile.n_head_kv[0] if profile.n_head_kv else 0,
                       n_expert=profile.n_expert)


def retype(profile: ModelProfile, ftype: str) -> ModelProfile:
    """The profile this model would have as `ftype` ("Q4_K_M", "Q8_0", ...): the types the
    quantizer would write (`tensor_types`), so the sizes are the bytes it would write."""
    ftype = ftype.upper()
    if ftype == profile.file_type:
        return profile
    try:
        ft = mix_file_type(ftype)
    except ValueError:
        raise ValueError(f"cannot estimate quant type {ftype!r}") from None
    # the mix reads numpy shapes (row last) and type names; a profile holds ggml's ne order
    rows = [(n, tuple(reversed(s)), T(ty).name) for n, s, ty in profile.tensors]
    # a type llama.cpp writes only with an importance matrix is planned as written with one
    types = tensor_types(rows, ftype, mix_params(profile), has_imatrix=ft.needs_imatrix)
    return replace(profile, file_type=ftype,
                   tensors=tuple((n, s, int(T[types[n]])) for n, s, _ in profile.tensors))
