"""How much RAM and VRAM llama.cpp (through llama-cpp-python) takes for a model, a context length
and a number of offloaded layers.

What "RAM needed" means here: the resident memory (RSS) the model process gains from loading the
model and evaluating one full micro-batch of prompt (n_ubatch = 512 tokens), less file pages it
never reads again: weights (memory-mapped files count in full, llama.cpp maps them with
MAP_POPULATE), CPU repacked copies (their mapped originals are `ram_reclaimable`), the KV cache
(llama.cpp zeroes it at creation, so every cell is resident), the compute memory that batch really
touches, the output buffer and a fixed runtime share. llama.cpp *reserves* a larger CPU compute
buffer (sized for 512 output rows of logits), but pages never touched are not resident, so they
do not count in RAM. On a GPU every reserved byte is committed, so VRAM counts the full reservation.

Compute-buffer sizes follow llama.cpp's worst-case graph (sched_reserve): the larger of the
attention step (KQ scores n_head x n_kv x n_ubatch in f32 without flash attention) and the output
step (n_ubatch rows of n_vocab logits). The constants below were checked against llama.cpp's own
"compute buffer size" lines and RSS measurements (benchmarks/planner_accuracy.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gguf.constants import GGMLQuantizationType as T

from .profile import ModelProfile

MiB = 1 << 20
N_UBATCH = 512
# Runtime share, fitted on RSS after load (SmolLM2 BPE 49k vocab, Gemma 3 SPM 262k, a random
# 32k-vocab llama): libllama's context and threads, then llama_vocab's tables per token and, for
# BPE vocabularies, per merge rule, plus llama-cpp-python's per-token candidate array.
RUNTIME_BASE = int(5.5 * MiB)
PER_VOCAB_TOKEN = 166
PER_MERGE = 187
GPU_CONTEXT = {"cuda": 300 * MiB, "rocm": 300 * MiB, "vulkan": 200 * MiB, "sycl": 300 * MiB}
# Types the CPU backend repacks into interleaved layouts (a second, anonymous copy) on AVX2/NEON.
REPACK_TYPES = frozenset({int(T.Q4_0), int(T.Q4_K), int(T.IQ4_NL)})


def _kv_elem_bytes(name: str) -> float:
    """Bytes per cached value of a KV type (llama.cpp's spelling or gguf's upper case)."""
    from quantdesk.core.engine.kv_cache import kv_bytes_per_element
    return kv_bytes_per_element(name)


@dataclass(frozen=True)
class MemoryEstimate:
    n_ctx: int
    gpu_layers: int
    ram_bytes: int
    vram_bytes: int
    weights_ram: int
    weights_vram: int
    kv_ram: int
    kv_vram: int
    compute_ram: int
    compute_vram: int
    overhead_ram: int
    overhead_vram: int
    ram_reclaimable: int = 0   # clean mapped file pages RSS shows on top of ram_bytes (mmap)
    logits_ram: int = 0        # prompt lookup: logits kept for every position (in ram_bytes)
    projector_ram: int = 0     # the vision projector (mmproj, planner/projector.py), in ram_bytes
    projector_vram: int = 0    # ... and in vram_bytes: on the GPU when any layer is

    @property
    def rss_bytes(self) -> int:
        """What the process's RSS grows by when memory is plentiful (nothing reclaimed)."""
        return self.ram_bytes + self.ram_reclaimable

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def kv_cells(profile: ModelProfile, n_ctx: int, *, swa_full: bool = True,
             n_ubatch: int = N_UBATCH) -> list[int]:
    """KV cells per layer: n_ctx, or for sliding-window layers (when llama.cpp is told not to
    keep a full-size SWA cache) the window plus one micro-batch, padded to 256."""
    cells = []
    for il in range(profile.n_layer):
        if profile.swa_layers[il] and not swa_full:
            cells.append(min(n_ctx, -(-(profile.swa_window + n_ubatch) // 256) * 256))
        else:
            cells.append(n_ctx)
    return cells


def kv_layer_bytes(profile: ModelProfile, n_ctx: int, *, type_k: str = "F16", type_v: str = "F16",
                   swa_full: bool = True) -> list[int]:
    """Per layer: cells x (n_embd_k_gqa x bytes(type_k) + n_embd_v_gqa x bytes(type_v))."""
    bk, bv = _kv_elem_bytes(type_k), _kv_elem_bytes(type_v)
    out = []
    for il, cells in enumerate(kv_cells(profile, n_ctx, swa_full=swa_full)):
        hkv = profile.n_head_kv[il]
        out.append(int(cells * (hkv * profile.head_dim_k * bk + hkv * profile.head_dim_v * bv)))
    return out


def compute_reserved(profile: ModelProfile, n_ctx: int, *, n_ubatch: int = N_UBATCH,
                     flash_attn: bool = False, with_output: bool = True) -> int:
    """llama.cpp's worst-case compute buffer: max(attention step, output step)."""
    t = min(n_ubatch, n_ctx)
    heads = max(profile.n_head, default=1)
    if flash_attn:  # no KQ matrix; an f16 mask
        attn = 4 * t * 4 * profile.n_embd + 2 * t * n_ctx
    else:           # KQ scores + f32 mask + q/k/v/residual activations
        attn = 4 * t * (heads * n_ctx + n_ctx + 4 * profile.n_embd)
    out = 4 * t * (profile.n_vocab + 2 * profile.n_embd) if with_output else 0
    return max(attn, out)


def compute_touched(profile: ModelProfile, n_ctx: int, *, n_ubatch: int = N_UBATCH,
                    flash_attn: bool = False) -> int:
    """Compute memory one full micro-batch at the start of a conversation really writes: the
    output step then holds a single row of logits, the attention step n_ubatch x n_ubatch scores."""
    t = min(n_ubatch, n_ctx)
    heads = max(profile.n_head, default=1)
    scores = 0 if flash_attn else heads * t          # one n_ubatch x n_ubatch block per head
    mask = n_ctx if any(profile.swa_layers) else 0   # the iswa mask spans the whole cache
    # ~12 live f32 vectors of n_embd per token (residual, norms, q/k/v, ffn halves), measured.
    return 4 * t * (scores + 12 * profile.n_embd + mask)


def estimate_memory(profile: ModelProfile, *, n_ctx: int, n_gpu_layers: int = 0,
                    n_ubatch: int = N_UBATCH, type_k: str = "F16", type_v: str = "F16",
                    flash_attn: bool = False, swa_full: bool = True, use_mmap: bool = True,
                    cpu_repack: bool = True, gpu_backend: str = "cuda",
                    prompt_lookup: int = 0, projector=None) -> MemoryEstimate:
    """RAM and VRAM for `n_gpu_layers` offloaded layers (llama.cpp counts from the last layer;
    n_layer + 1 also moves the output matrix; token_embd always stays on the CPU). projector: a
    planner.projector.ProjectorCost loaded with the model (the engine host puts its weights and
    compute buffer on the GPU whenever a layer is there, core.engine.vision)."""
    n_layer = profile.n_layer
    gl = max(0, min(n_gpu_layers, n_layer + 1))
    first_gpu = n_layer - min(gl, n_layer)
    output_on_gpu = gl > n_layer
    layers, embd, out, other = profile.group_bytes()
    kv = kv_layer_bytes(profile, n_ctx, type_k=type_k, type_v=type_v, swa_full=swa_full)

    tied = profile.tied
    w_vram = sum(layers[first_gpu:]) + (out if output_on_gpu else 0)
    w_ram = embd + other + sum(layers[:first_gpu])
    if not output_on_gpu:
        # Tied embeddings on the CPU read token_embd's own (mapped) memory: no second copy.
        w_ram += out - embd if tied else out
    # Repacked matrices are copied out of the file mapping; with mmap the original pages stay
    # mapped and show in RSS, but they are clean and never read again, so the OS drops them under
    # pressure: reported apart, not part of what the model needs.
    reclaimable = sum(profile.layer_repack_bytes(REPACK_TYPES)[:first_gpu]) \
        if cpu_repack and use_mmap else 0
    kv_vram = sum(kv[first_gpu:])
    kv_ram = sum(kv[:first_gpu])

    any_cpu_layers = first_gpu > 0
    compute_ram = compute_touched(profile, n_ctx, n_ubatch=n_ubatch, flash_attn=flash_attn) \
        if any_cpu_layers or not output_on_gpu else 4 * min(n_ubatch, n_ctx) * profile.n_embd * 2
    compute_vram = compute_reserved(profile, n_ctx, n_ubatch=n_ubatch, flash_attn=flash_attn,
                                    with_output=output_on_gpu) if gl else 0
    if gl and any_cpu_layers:
        # op_offload: prompt batches run CPU layers' matmuls on the GPU, copying that layer's
        # weights into the GPU compute buffer. Not yet checked on a GPU: kept conservative.
        compute_vram += max(layers[:first_gpu], default=0)
    overhead_ram = (RUNTIME_BASE + PER_VOCAB_TOKEN * profile.n_vocab + PER_MERGE * profile.n_merges
                    + 4 * profile.n_vocab)  # + the output buffer: one row of logits
    overhead_vram = GPU_CONTEXT.get(gpu_backend, 0) if gl else 0
    logits_ram = draft_logits_bytes(profile, n_ctx, n_ubatch=n_ubatch) if prompt_lookup else 0
    projector_vram = projector.device_bytes if projector is not None and gl else 0
    projector_ram = (projector.total_bytes - projector_vram) if projector is not None else 0
    ram = w_ram + kv_ram + compute_ram + overhead_ram + logits_ram + projector_ram
    vram = w_vram + kv_vram + compute_vram + overhead_vram + projector_vram
    return MemoryEstimate(n_ctx=n_ctx, gpu_layers=gl, ram_bytes=int(ram), vram_bytes=int(vram),
                          weights_ram=int(w_ram), weights_vram=int(w_vram), kv_ram=int(kv_ram),
                          kv_vram=int(kv_vram), compute_ram=int(compute_ram),
                          compute_vram=int(compute_vram), overhead_ram=int(overhead_ram),
                          overhead_vram=int(overhead_vram), ram_reclaimable=int(reclaimable),
                          logits_ram=int(logits_ram), projector_ram=int(projector_ram),
                          projector_vram=int(projector_vram))


def draft_logits_bytes(profile: ModelProfile, n_ctx: int, *, n_ubatch: int = N_UBATCH) -> int:
    """What speculative decoding costs in llama-cpp-python: a draft model turns on logits_all, so
    its own score array keeps one f32 row of n_vocab per context position (filled as the
    conversation grows: counted in full), and llama.cpp writes a row per batch token into its
    output buffer and the compute buffer's logits instead of one."""
    t = min(n_ubatch, n_ctx)
    return 4 * profile.n_vocab * (n_ctx + 2 * t - 1)
