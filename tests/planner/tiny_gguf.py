"""A tiny llama GGUF with random weights and known tensor shapes/types, built with gguf-py.

llama.cpp loads it (SentencePiece-style vocabulary of byte tokens plus filler pieces), so it serves
both the hand-computed memory-model tests and the held-out accuracy check.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def build_tiny_llama(path: Path, *, n_embd: int = 256, n_layer: int = 3, n_head: int = 4,
                     n_head_kv: int = 2, n_ff: int = 768, n_vocab: int = 1024,
                     tied: bool = False, seed: int = 0) -> Path:
    import gguf
    from gguf.quants import quantize

    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tokens += [f"\u2581t{i}" for i in range(n_vocab - len(tokens))]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(n_vocab - 259)])
    w.add_token_types([3, 3, 3] + [6] * 256 + [1] * (n_vocab - 259))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def mat(rows: int, cols: int) -> np.ndarray:  # numpy shape (rows, cols) = GGUF (cols, rows)
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)

    def q8(name: str, a: np.ndarray) -> None:
        w.add_tensor(name, quantize(a, gguf.GGMLQuantizationType.Q8_0),
                     raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    q8("token_embd.weight", mat(n_vocab, n_embd))
    w.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
    if not tied:
        q8("output.weight", mat(n_vocab, n_embd))
    hd = n_embd // n_head
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, np.float32))
        w.add_tensor(p + "attn_q.weight", mat(n_head * hd, n_embd).astype(np.float16))
        q8(p + "attn_k.weight", mat(n_head_kv * hd, n_embd))
        q8(p + "attn_v.weight", mat(n_head_kv * hd, n_embd))
        w.add_tensor(p + "attn_output.weight", mat(n_embd, n_head * hd).astype(np.float16))
        q8(p + "ffn_gate.weight", mat(n_ff, n_embd))
        q8(p + "ffn_up.weight", mat(n_ff, n_embd))
        q8(p + "ffn_down.weight", mat(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
