"""llama.cpp's own way through a prompt with images: libmtmd's mtmd_helper_eval_chunks evaluates
every chunk (text and images, with the positions libmtmd gives them: M-RoPE grids, non-causal
image attention) into a fresh llama.cpp context; then the log-probabilities of the first token
to generate are read from the last position's logits. Nothing of core/engine is used, so a test
can hold the host's first-token logprobs against these.

Run as a script (libmtmd aborts the process on some bad files): argv = text GGUF, mmproj GGUF,
a JSON file {"prompt", "add_bos", "images": [paths], "n_ctx", "n_batch", "top",
"causal_images"}; prints JSON
{"top": [[token bytes as a list, logprob], ...], "n_past": positions used,
"n_tokens": tokens (KV cells) used}.
"""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def first_token_logprobs(model: str, mmproj: str, prompt: str, images: list[bytes], *,
                         add_bos: bool, n_ctx: int, n_batch: int, top: int,
                         causal_images: bool = False, threads: int = 2) -> dict:
    import llama_cpp
    from llama_cpp import mtmd_cpp as mt
    llama_cpp.llama_backend_init()
    mparams = llama_cpp.llama_model_default_params()
    mparams.n_gpu_layers = 0
    lm = llama_cpp.llama_model_load_from_file(model.encode(), mparams)
    if not lm:
        raise RuntimeError(f"llama.cpp did not load {model}")
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_batch, n_batch
    cparams.n_threads = cparams.n_threads_batch = threads
    cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO   # the host's default
    lctx = llama_cpp.llama_init_from_model(lm, cparams)
    mparams_mt = mt.mtmd_context_params_default()
    mparams_mt.use_gpu, mparams_mt.n_threads = False, threads
    mparams_mt.print_timings, mparams_mt.flash_attn_type = False, cparams.flash_attn_type
    ctx = mt.mtmd_init_from_file(mmproj.encode(), lm, mparams_mt)
    if not ctx:
        raise RuntimeError(f"libmtmd did not load {mmproj}")
    bitmaps, chunks = [], mt.mtmd_input_chunks_init()
    try:
        for data in images:
            buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            bitmaps.append(mt.mtmd_helper_bitmap_init_from_buf(ctx, buf, len(data), False))
            if not bitmaps[-1]:
                raise RuntimeError("libmtmd could not read an image")
        raw = prompt.encode()
        text = mt.mtmd_input_text()
        text.text, text.text_len, text.add_special, text.parse_special = raw, len(raw), add_bos, True
        array = (mt.mtmd_bitmap_p_ctypes * max(1, len(bitmaps)))(*bitmaps)
        rc = mt.mtmd_tokenize(ctx, chunks, ctypes.byref(text), array, len(bitmaps))
        if rc != 0:
            raise RuntimeError(f"mtmd_tokenize returned {rc}")
        n_past = llama_cpp.llama_pos(0)
        if causal_images:
            _eval_images_causal(ctx, lctx, lm, chunks, n_batch, n_past)
        else:
            rc = mt.mtmd_helper_eval_chunks(ctx, lctx, chunks, 0, 0, n_batch, True,
                                            ctypes.byref(n_past))
            if rc != 0:
                raise RuntimeError(f"mtmd_helper_eval_chunks returned {rc}")
        vocab = llama_cpp.llama_model_get_vocab(lm)
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(lctx, -1),
                                    shape=(n_vocab,)).astype(np.float64)
        peak = row.max()
        logprobs = row - (peak + np.log(np.exp(row - peak).sum()))
        best = np.argsort(-logprobs, kind="stable")[:top]
        piece = ctypes.create_string_buffer(64)

        def token_bytes(t: int) -> list[int]:
            n = llama_cpp.llama_token_to_piece(vocab, int(t), piece, len(piece), 0, True)
            return list(piece.raw[:n])
        return {"top": [[token_bytes(t), float(logprobs[t])] for t in best],
                "n_past": int(n_past.value), "n_tokens": int(mt.mtmd_helper_get_n_tokens(chunks))}
    finally:
        mt.mtmd_input_chunks_free(chunks)
        for b in bitmaps:
            mt.mtmd_bitmap_free(b)
        mt.mtmd_free(ctx)
        llama_cpp.llama_free(lctx)
        llama_cpp.llama_model_free(lm)


def _eval_images_causal(ctx, lctx, lm, chunks, n_batch: int, n_past) -> None:
    """A wrong way on purpose: each image's embeddings decoded as a plain llama_batch with
    causal attention and 1-D positions (text chunks as libmtmd does them). For a model whose
    images libmtmd decodes non-causally (Gemma 3) it must give other logprobs."""
    import llama_cpp
    from llama_cpp import mtmd_cpp as mt
    if mt.mtmd_decode_use_mrope(ctx):
        raise RuntimeError("the causal-images reference is for 1-D positions only")
    n_embd = llama_cpp.llama_model_n_embd_inp(lm)
    for i in range(mt.mtmd_input_chunks_size(chunks)):
        chunk = mt.mtmd_input_chunks_get(chunks, i)
        if mt.mtmd_input_chunk_get_type(chunk) == mt.MTMD_INPUT_CHUNK_TYPE_TEXT:
            rc = mt.mtmd_helper_eval_chunk_single(ctx, lctx, chunk, n_past.value, 0, n_batch,
                                                  True, ctypes.byref(n_past))
            if rc != 0:
                raise RuntimeError(f"a text chunk failed ({rc})")
            continue
        n = int(mt.mtmd_input_chunk_get_n_tokens(chunk))
        if mt.mtmd_encode_chunk(ctx, chunk) != 0:
            raise RuntimeError("mtmd_encode_chunk failed")
        batch = llama_cpp.llama_batch_init(n, n_embd, 1)
        ctypes.memmove(batch.embd, mt.mtmd_get_output_embd(ctx), n * n_embd * 4)
        for j in range(n):
            batch.pos[j], batch.n_seq_id[j], batch.logits[j] = n_past.value + j, 1, 0
            batch.seq_id[j][0] = 0
        batch.n_tokens = n
        rc = llama_cpp.llama_decode(lctx, batch)
        llama_cpp.llama_batch_free(batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} for an image")
        n_past.value += n


class ReferenceRun:
    """first_token_logprobs in a child process, started at once (the caller does its own work
    meanwhile); result() waits and raises RuntimeError with the child's last lines on failure."""

    def __init__(self, model, mmproj, prompt: str, image_paths: list[Path], work: Path, *,
                 add_bos: bool = True, n_ctx: int = 512, n_batch: int = 512, top: int = 5,
                 causal_images: bool = False):
        job = Path(work) / f"mtmd_reference_job{int(causal_images)}.json"
        job.write_text(json.dumps({"prompt": prompt, "add_bos": add_bos, "n_ctx": n_ctx,
                                   "n_batch": n_batch, "top": top, "causal_images": causal_images,
                                   "images": [str(p) for p in image_paths]}))
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(model), str(mmproj), str(job)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])

    def result(self, timeout: float = 300) -> dict:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError("the libmtmd reference did not finish") from None
        if self.proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"libmtmd reference exited {self.proc.returncode}: "
                               + " | ".join(tail))
        return json.loads(out.decode().strip().splitlines()[-1])


if __name__ == "__main__":
    spec = json.loads(Path(sys.argv[3]).read_text())
    result = first_token_logprobs(
        sys.argv[1], sys.argv[2], spec["prompt"], [Path(p).read_bytes() for p in spec["images"]],
        add_bos=spec["add_bos"], n_ctx=spec["n_ctx"], n_batch=spec["n_batch"], top=spec["top"],
        causal_images=spec["causal_images"])
    print(json.dumps(result))
