"""libmtmd (llama.cpp's multimodal library, shipped with llama-cpp-python) run on an mmproj file.

`image_embeddings(model, mmproj, rgb)` loads the language model and the projector the way
llama.cpp's mtmd tools do, encodes one RGB image and returns what the projector hands the language
model: one row of the model's input width per image token (of the first image chunk, or with
`all_chunks` of every image chunk in prompt order, stacked: a sliced image's tiles). Run as a script it prints
that array as .npy to stdout, so a test can run it in a child process (libmtmd aborts the process
on some bad files).
"""
from __future__ import annotations

import ctypes
import io
import subprocess
import sys
from pathlib import Path

import numpy as np


def image_embeddings(model: str | Path, mmproj: str | Path, rgb: np.ndarray,
                     threads: int = 2, all_chunks: bool = False) -> np.ndarray:
    import llama_cpp
    from llama_cpp import mtmd_cpp as mt
    llama_cpp.llama_backend_init()
    mparams = llama_cpp.llama_model_default_params()
    mparams.n_gpu_layers = 0
    lm = llama_cpp.llama_model_load_from_file(str(model).encode(), mparams)
    if not lm:
        raise RuntimeError(f"llama.cpp did not load {model}")
    cparams = mt.mtmd_context_params_default()
    cparams.use_gpu = False
    cparams.n_threads = threads
    cparams.warmup = False
    ctx = mt.mtmd_init_from_file(str(mmproj).encode(), lm, cparams)
    if not ctx:
        raise RuntimeError(f"libmtmd did not load {mmproj}")
    try:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        ny, nx, _ = rgb.shape
        bitmap = mt.mtmd_bitmap_init(nx, ny, rgb.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)))
        chunks = mt.mtmd_input_chunks_init()
        text = mt.mtmd_input_text()
        prompt = mt.mtmd_default_marker()
        text.text, text.text_len, text.add_special, text.parse_special = prompt, len(prompt), False, True
        bitmaps = (mt.mtmd_bitmap_p_ctypes * 1)(bitmap)
        rc = mt.mtmd_tokenize(ctx, chunks, ctypes.byref(text), bitmaps, 1)
        if rc != 0:
            raise RuntimeError(f"mtmd_tokenize returned {rc}")
        rows = []
        for i in range(mt.mtmd_input_chunks_size(chunks)):
            chunk = mt.mtmd_input_chunks_get(chunks, i)
            if mt.mtmd_input_chunk_get_type(chunk) != mt.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                continue
            n_tokens = mt.mtmd_input_chunk_get_n_tokens(chunk)
            if mt.mtmd_encode_chunk(ctx, chunk) != 0:
                raise RuntimeError("mtmd_encode_chunk failed")
            # the language model's input width: n_embd, or for Qwen3-VL n_embd per deepstack
            # layer more (libmtmd appends the deepstack mergers' outputs to each token's row)
            n_embd = llama_cpp.llama_model_n_embd_inp(lm)
            out = mt.mtmd_get_output_embd(ctx)
            rows.append(np.ctypeslib.as_array(out, shape=(n_tokens * n_embd,))
                        .reshape(n_tokens, n_embd).copy())
            if not all_chunks:
                break
        if not rows:
            raise RuntimeError("the prompt produced no image chunk")
        return np.concatenate(rows)
    finally:
        mt.mtmd_free(ctx)
        llama_cpp.llama_model_free(lm)


def image_embeddings_in_child(model, mmproj, rgb: np.ndarray, timeout: float = 300,
                              all_chunks: bool = False) -> np.ndarray:
    """The same, in a child process; raises RuntimeError with the child's last lines on failure."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(rgb, dtype=np.uint8))
    proc = subprocess.run([sys.executable, "-m", "tests.mmproj.mtmd_probe", str(model), str(mmproj)]
                          + (["--all"] if all_chunks else []),
                          input=buf.getvalue(), capture_output=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[2])
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"libmtmd child exited {proc.returncode}: " + " | ".join(tail))
    return np.load(io.BytesIO(proc.stdout))


if __name__ == "__main__":
    image = np.load(io.BytesIO(sys.stdin.buffer.read()))
    emb = image_embeddings(sys.argv[1], sys.argv[2], image, all_chunks="--all" in sys.argv[3:])
    out = io.BytesIO()
    np.save(out, emb)
    sys.stdout.buffer.write(out.getvalue())
