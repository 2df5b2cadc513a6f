"""What a vision projector (an mmproj GGUF, loaded by libmtmd beside the language model) costs.

libmtmd (tools/mtmd/clip.cpp) reads every tensor into a backend buffer (no mmap: the weights are
resident in full), then reserves its compute buffer with a warm-up graph for one image of
`warmup_image_size` pixels a side: the model's image_size, except for the dynamic-resolution
projectors, which warm up on a fixed token count (Pixtral 16x16, Qwen2/2.5-VL 46x46 merged
tokens). Both sit on the GPU when libmtmd is told use_gpu (the host does so whenever a layer of the
language model is offloaded, core.engine.vision), else in RAM. An image larger than the warm-up
size makes libmtmd grow the buffer when it is encoded; the plan prices the warm-up, as llama.cpp
reserves it at load.

The compute buffer is the ViT's peak over its graph with ggml's allocator reusing freed tensors:
the input image, the patch embeddings and position table, a few live (n_patches x hidden) f32
activations, the FFN's (n_patches x ffn) intermediate and, without flash attention, the KQ scores
(heads x n_patches^2 f32; libmtmd turns flash attention on in its warm-up where the backend has
it, which the CPU backend does). Fitted on libmtmd's own "compute buffer size" lines
(benchmarks/RESULTS.md, "Vision projector memory").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import PlannerError

# Projectors whose warm-up is a token count (clip.cpp: set_warmup_n_tokens), tokens per side.
WARMUP_TOKENS_PER_SIDE = {"pixtral": 16, "qwen2vl_merger": 46, "qwen2.5vl_merger": 46,
                          "qwen3vl_merger": 46}
# Default spatial merge (clip.cpp) where the file does not say it (clip.vision.spatial_merge_size).
DEFAULT_MERGE = {"qwen2vl_merger": 2, "qwen2.5vl_merger": 2, "qwen3vl_merger": 2}
LIVE_ACTIVATIONS = 5     # (n_patches x hidden) f32 tensors alive at a layer's peak (fitted)
WINDOW_MASK_TYPES = frozenset({"qwen2.5vl_merger"})
HOST_BASE = 4 << 20      # libmtmd's context and threads: RSS across the load (fitted, CPU)
HOST_PER_PIXEL = 30      # decoded + preprocessed copies of one warm-up-size image (fitted)


@dataclass(frozen=True)
class ProjectorCost:
    path: str
    weights_bytes: int       # the tensors libmtmd reads in (the file, less its header)
    compute_bytes: int       # the warm-up compute buffer
    host_bytes: int          # RAM wherever the rest is: libmtmd's context, an image's copies
    n_patches: int
    image_side: int = 0      # the warm-up image's side in pixels
    projector_type: str = ""

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.compute_bytes + self.host_bytes

    @property
    def device_bytes(self) -> int:
        """What moves to the GPU with use_gpu: the weights and the compute buffer."""
        return self.weights_bytes + self.compute_bytes

    def to_json(self) -> dict:
        return {"path": self.path, "weights_bytes": self.weights_bytes,
                "compute_bytes": self.compute_bytes, "host_bytes": self.host_bytes,
                "n_patches": self.n_patches,
                "image_side": self.image_side,
                "projector_type": self.projector_type, "total_bytes": self.total_bytes}


def _int(kv: dict, key: str, default: int = 0) -> int:
    value = kv.get(key)
    return int(value) if isinstance(value, int) else default


def projector_cost(path, *, flash_attn: bool = True) -> ProjectorCost:
    """The memory the projector at `path` takes when libmtmd loads it. Raises PlannerError
    (one line) when the file cannot be read as an mmproj."""
    from quantdesk.core.gguf import GGUFError, read_header
    path = Path(path)
    try:
        header = read_header(path)
    except GGUFError as exc:
        raise PlannerError(str(exc)) from None
    except OSError as exc:
        raise PlannerError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    kv = header.metadata
    if kv.get("general.architecture") != "clip":
        raise PlannerError(f"{path.name} is not a vision projector (mmproj)")
    weights = sum(t.n_bytes for t in header.tensors)
    ptype = str(kv.get("clip.vision.projector_type") or kv.get("clip.projector_type") or "")
    compute, n_patches, side = compute_estimate(kv, ptype, flash_attn=flash_attn)
    return ProjectorCost(str(path), int(weights), int(compute), host_bytes(side), n_patches,
                         side, ptype)


def compute_estimate(kv: dict, projector_type: str = "", *, flash_attn: bool = True
                     ) -> tuple[int, int, int]:
    """(compute buffer bytes, patches, image side in pixels) of libmtmd's warm-up from an mmproj's clip.* keys."""
    v = "clip.vision."
    patch = max(1, _int(kv, v + "patch_size", 14))
    hidden = _int(kv, v + "embedding_length")
    ffn = _int(kv, v + "feed_forward_length", 4 * hidden)
    heads = max(1, _int(kv, v + "attention.head_count", 1))
    per_side = WARMUP_TOKENS_PER_SIDE.get(projector_type)
    if per_side is not None:
        merge = _int(kv, v + "spatial_merge_size", DEFAULT_MERGE.get(projector_type, 1)) or 1
        side = per_side * patch * merge
    else:
        side = _int(kv, v + "image_size", 224)
    n_patches = (side // patch) ** 2
    # Patch embedding: the f32 image and its f16 im2col copy (3 x patch^2 values per patch).
    embed = 4 * 3 * side * side + 2 * 3 * side * side
    # A layer: live (n_patches x hidden) and (n_patches x ffn) activations, plus the KQ scores
    # without flash attention.
    layer = 4 * n_patches * (LIVE_ACTIVATIONS * hidden + ffn)
    if not flash_attn:
        layer += 4 * heads * n_patches * n_patches
    if projector_type in WINDOW_MASK_TYPES:
        # Qwen2.5-VL's window-attention mask spans every patch pair, alive through all layers:
        # f32, plus its f16 copy when flash attention takes it.
        layer += (6 if flash_attn else 4) * n_patches * n_patches
    return max(embed, layer), n_patches, side


def host_bytes(image_side: int) -> int:
    """RAM libmtmd takes wherever its buffers are: its context, and an image's decoded and
    preprocessed copies (f32 planes) for the warm-up size."""
    return HOST_BASE + HOST_PER_PIXEL * image_side * image_side


