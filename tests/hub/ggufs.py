"""Small real GGUF files for the fake hub, written with gguf-py's GGUFWriter.

A tiny llama-shaped model (random bytes as tensor data: the tests read headers and move bytes,
they never run it) with a vocabulary large enough that the header spans several hundred KB, so
reading it remotely takes more than one range request when the first window is small.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

N_EMBD, N_FF, N_LAYER, N_VOCAB = 256, 512, 4, 12000


def _tensor_plan(main_type, N_EMBD=N_EMBD):  # noqa: N803 - the module constant, overridable
    from gguf import GGMLQuantizationType as T
    plan = [("token_embd.weight", (N_VOCAB, N_EMBD), main_type), ("output_norm.weight", (N_EMBD,), T.F32)]
    for i in range(N_LAYER):
        plan += [
            (f"blk.{i}.attn_norm.weight", (N_EMBD,), T.F32),
            (f"blk.{i}.attn_q.weight", (N_EMBD, N_EMBD), main_type),
            (f"blk.{i}.attn_k.weight", (N_EMBD // 2, N_EMBD), main_type),
            (f"blk.{i}.attn_v.weight", (N_EMBD // 2, N_EMBD), T.Q6_K if main_type == T.Q4_K else main_type),
            (f"blk.{i}.attn_output.weight", (N_EMBD, N_EMBD), main_type),
            (f"blk.{i}.ffn_norm.weight", (N_EMBD,), T.F32),
            (f"blk.{i}.ffn_gate.weight", (N_FF, N_EMBD), main_type),
            (f"blk.{i}.ffn_up.weight", (N_FF, N_EMBD), main_type),
            (f"blk.{i}.ffn_down.weight", (N_EMBD, N_FF), T.Q6_K if main_type == T.Q4_K else main_type),
        ]
    return plan


def write_model(path: Path, quant: str, *, split_max_tensors: int = 0, seed: int = 0,
                n_embd: int = N_EMBD, arch: str = "llama") -> list[Path]:
    """Write a tiny llama GGUF of type quant ("Q4_K_M", "Q8_0", "F16"); returns the file(s) written.
    n_embd and arch make another model of the same shape family (the quality check's strangers)."""
    from gguf import GGMLQuantizationType as T, GGUFWriter, LlamaFileType
    from gguf.constants import GGML_QUANT_SIZES
    main_type, ftype = {
        "Q4_K_M": (T.Q4_K, LlamaFileType.MOSTLY_Q4_K_M),
        "Q8_0": (T.Q8_0, LlamaFileType.MOSTLY_Q8_0),
        "F16": (T.F16, LlamaFileType.MOSTLY_F16),
    }[quant]
    rng = np.random.default_rng(seed)
    w = GGUFWriter(path, arch, split_max_tensors=split_max_tensors)
    w.add_name("Tiny Test Llama")
    w.add_block_count(N_LAYER)
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_dimension_count(n_embd // 4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(int(ftype))
    w.add_tokenizer_model("llama")
    w.add_token_list([f"tok{i:05d}" for i in range(N_VOCAB)])
    w.add_token_scores([0.0] * N_VOCAB)
    w.add_token_types([1] * N_VOCAB)
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    for name, shape, qtype in _tensor_plan(main_type, n_embd):
        n = int(np.prod(shape))
        block, type_size = GGML_QUANT_SIZES[qtype]
        if qtype == T.F32:
            w.add_tensor(name, rng.standard_normal(shape, dtype=np.float32))
        elif qtype == T.F16:
            w.add_tensor(name, rng.standard_normal(shape).astype(np.float16))
        else:
            raw = rng.integers(0, 256, size=(shape[0], shape[-1] // block * type_size) if len(shape) > 1
                               else (n // block * type_size,), dtype=np.uint8)
            w.add_tensor(name, raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if split_max_tensors:
        return sorted(path.parent.glob(path.stem + "-0*-of-*.gguf"))
    return [path]


def parameter_count() -> int:
    return sum(int(np.prod(shape)) for _, shape, _ in _tensor_plan(None))
