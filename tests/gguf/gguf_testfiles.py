"""Test files for the GGUF/library tests: tiny GGUFs written with gguf-py's GGUFWriter.

(A uniquely named module rather than conftest.py, so tests can import it unambiguously.)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_tiny_gguf(path: Path, *, n_layers: int = 2, split_max_tensors: int = 0,
                    name: str = "Tiny Test", chat_template: str | None = "{{ messages }}",
                    general_type: str | None = None, tensors: bool = True) -> list[Path]:
    """A small llama-shaped GGUF (random F16 weights, F32 norms); returns the files written."""
    import gguf
    w = gguf.GGUFWriter(str(path), "llama", split_max_tensors=split_max_tensors)
    w.add_name(name)
    if general_type:
        w.add_type(general_type)
    w.add_block_count(n_layers)
    w.add_context_length(512)
    w.add_embedding_length(256)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"tok{i}" for i in range(64)])
    w.add_token_scores([float(-i) for i in range(64)])
    if chat_template is not None:
        w.add_chat_template(chat_template)
    rng = np.random.default_rng(0)
    if tensors:
        w.add_tensor("token_embd.weight", rng.standard_normal((64, 256)).astype(np.float16))
        for i in range(n_layers):
            w.add_tensor(f"blk.{i}.attn_q.weight", rng.standard_normal((256, 256)).astype(np.float16))
            w.add_tensor(f"blk.{i}.ffn_up.weight", rng.standard_normal((512, 256)).astype(np.float16))
            w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(256, dtype=np.float32))
        w.add_tensor("output_norm.weight", np.ones(256, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return w.format_shard_names(Path(path))


def open_handles_to(path: Path) -> list[str]:
    """This process's file descriptors and memory maps that refer to `path` (Linux /proc)."""
    target = os.path.realpath(path)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                found.append(f"fd {fd}")
        except OSError:
            pass
    with open("/proc/self/maps") as maps:
        found += [line.strip() for line in maps if line.rstrip().endswith(target)]
    return found


def add_to_hf_cache(cache: Path, repo_id: str, files: dict[str, Path | bytes],
                    revision: str = "0123456789abcdef0123456789abcdef01234567") -> list[Path]:
    """Lay files out the way huggingface_hub does: blobs named by hash, snapshot symlinks, refs/main.

    Returns the snapshot paths (what the library should list)."""
    import hashlib
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    out = []
    for name, content in files.items():
        data = content.read_bytes() if isinstance(content, Path) else content
        digest = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / digest).write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(repo / "blobs" / digest, link.parent))
        out.append(link)
    return out
