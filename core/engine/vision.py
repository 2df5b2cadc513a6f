"""Images in the engine host: libmtmd (llama.cpp's multimodal library, shipped with
llama-cpp-python as llama_cpp.mtmd_cpp) encodes them with the model's vision projector.

The host's own generation loop stays as it is: a prompt with images is evaluated here, chunk by
chunk (text through Llama.eval, images through mtmd_helper_eval_chunk_single), into the same
llama.cpp context; create_completion then finds the whole prompt already evaluated (prefix match)
and only samples. Image positions are recorded in Llama.input_ids as -1, a token id no text has,
so a later prompt's prefix match never reuses them as text.

Positions are libmtmd's: an image chunk starts at Llama.n_tokens and moves it on by the chunk's
n_pos, and the text after it continues from there through Llama.eval (1-D positions, which
llama.cpp widens to M-RoPE's (p, p, p, 0) as mtmd_helper's own text decode does). For M-RoPE
models (Qwen2-VL, Qwen2.5-VL) n_pos is the image grid's longer side, fewer than the image's
tokens, so the KV cache holds more cells than Llama.n_tokens counts: `Evaluated.cells` is what
the context size is checked against, and kv_room() makes llama-cpp-python's own room-left sums
(max_tokens, prompt-lookup drafts) count cells. tests/engine/test_image_positions.py holds the
first-token logprobs against libmtmd's mtmd_helper_eval_chunks for every vision family.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
from typing import NamedTuple

from .images import MEDIA_MARKER
from .prompt import TemplateError
from .types import ContextOverflowError, InvalidRequestError

NOT_TEXT = -1   # Llama.input_ids at an image position


class Evaluated(NamedTuple):
    positions: int      # Llama.n_tokens after the prompt (the next token's position)
    image_tokens: int   # KV cells the images took
    cells: int          # KV cells the whole prompt took (more than positions with M-RoPE)


def _name(path: str) -> str:
    return os.path.basename(path)


class Projector:
    """One mmproj loaded next to the host's model; close() before the model is freed."""

    def __init__(self, llm, path: str, *, n_threads: int, use_gpu: bool):
        import llama_cpp
        from llama_cpp import mtmd_cpp as mt

        from .projector import projection_dim
        self.mt, self.path = mt, path
        if mt.mtmd_default_marker().decode() != MEDIA_MARKER:
            raise RuntimeError("this llama-cpp-python's libmtmd uses another media marker")
        dim = projection_dim(path)   # ProjectorError (a ValueError): one line
        width = int(llama_cpp.llama_model_n_embd(llm.model))
        # the input width: Qwen3-VL's is n_embd per deepstack layer more (libmtmd appends the
        # deepstack mergers' outputs), while its projection_dim states n_embd, as for the others
        inp = int(llama_cpp.llama_model_n_embd_inp(llm.model)
                  if hasattr(llama_cpp, "llama_model_n_embd_inp") else width)
        if dim is not None and dim not in (width, inp):   # libmtmd would refuse it only in its log
            raise RuntimeError(f"{_name(path)} does not fit this model: it projects images to "
                               f"width {dim}, the model's embeddings are {width} wide")
        params = mt.mtmd_context_params_default()
        params.use_gpu = bool(use_gpu)
        params.n_threads = int(n_threads)
        params.print_timings = False
        params.flash_attn_type = llm.context_params.flash_attn_type
        self.ctx = mt.mtmd_init_from_file(path.encode(), llm.model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not load the vision projector {_name(path)} "
                               f"(details in the engine log)")
        if not mt.mtmd_support_vision(self.ctx):
            self.close()
            raise RuntimeError(f"{_name(path)} has no vision encoder")

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self.mt.mtmd_free(self.ctx)
            self.ctx = None

    def _bitmap(self, data: bytes, number: int):
        mt = self.mt
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        bitmap = mt.mtmd_helper_bitmap_init_from_buf(self.ctx, buf, len(data), False)
        if not bitmap:
            hint = (" (WebP is not supported: use PNG or JPEG)"
                    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else " (use PNG or JPEG)")
            raise InvalidRequestError(f"image {number} is not an image llama.cpp can read{hint}")
        return bitmap

    def evaluate(self, llm, text: str, images: list[bytes], stopping,
                 add_bos: bool = False) -> Evaluated:
        """Evaluate the prompt `text` (one MEDIA_MARKER per image) into llm's context from the
        start. Raises InvalidRequestError for a bad image, ContextOverflowError,
        RuntimeError when the decode was aborted (cancel)."""
        mt = self.mt
        markers = text.count(MEDIA_MARKER)
        if markers != len(images):
            raise TemplateError(f"the prompt has {markers} image place(s) for {len(images)} "
                                f"image(s): the model's chat template dropped an image, or a "
                                f"message's text contains {MEDIA_MARKER}")
        bitmaps = []
        chunks = None
        try:
            for i, data in enumerate(images, 1):
                bitmaps.append(self._bitmap(data, i))
            chunks = mt.mtmd_input_chunks_init()
            raw = text.encode("utf-8")
            inp = mt.mtmd_input_text()
            inp.text, inp.text_len, inp.add_special, inp.parse_special = raw, len(raw), add_bos, True
            array = (mt.mtmd_bitmap_p_ctypes * max(1, len(bitmaps)))(*bitmaps)
            rc = mt.mtmd_tokenize(self.ctx, chunks, ctypes.byref(inp), array, len(bitmaps))
            if rc != 0:
                raise InvalidRequestError(f"llama.cpp could not prepare the images "
                                          f"(mtmd_tokenize returned {rc})")
            # every token takes a KV cell, whatever its position (M-RoPE: n_pos < n_tokens)
            cells, n_ctx = int(mt.mtmd_helper_get_n_tokens(chunks)), llm.n_ctx()
            if cells >= n_ctx:
                raise ContextOverflowError(
                    f"the conversation with its images ({cells} tokens) does not fit the context "
                    f"size ({n_ctx}); start a new chat or load with a larger context")
            return self._eval_chunks(llm, chunks, stopping)
        finally:
            if chunks:
                mt.mtmd_input_chunks_free(chunks)
            for b in bitmaps:
                mt.mtmd_bitmap_free(b)

    def _eval_chunks(self, llm, chunks, stopping) -> Evaluated:
        import llama_cpp
        mt = self.mt
        llm.reset()
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        image_tokens = image_positions = 0
        for i in range(mt.mtmd_input_chunks_size(chunks)):
            chunk = mt.mtmd_input_chunks_get(chunks, i)
            if mt.mtmd_input_chunk_get_type(chunk) == mt.MTMD_INPUT_CHUNK_TYPE_TEXT:
                n = ctypes.c_size_t()
                ptr = mt.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
                if n.value:
                    llm.eval([ptr[j] for j in range(n.value)])   # RuntimeError when aborted
                continue
            image_tokens += int(mt.mtmd_input_chunk_get_n_tokens(chunk))
            start = llm.n_tokens
            new_n_past = llama_cpp.llama_pos(0)
            rc = mt.mtmd_helper_eval_chunk_single(self.ctx, llm.ctx, chunk, start, 0,
                                                  llm.n_batch, False, ctypes.byref(new_n_past))
            if rc != 0:
                if stopping():
                    raise RuntimeError("cancelled while reading an image")
                raise RuntimeError(f"llama.cpp could not evaluate an image (error {rc})")
            llm.input_ids[start:new_n_past.value] = NOT_TEXT
            llm.n_tokens = new_n_past.value   # start + the chunk's n_pos, as libmtmd moves on
            image_positions += new_n_past.value - start
        if llm.n_tokens and llm.input_ids[llm.n_tokens - 1] == NOT_TEXT:
            # create_completion re-evaluates the last position for its logits: it must be text
            raise TemplateError("the prompt ends with an image; the model's chat template "
                                "wrote nothing after it")
        return Evaluated(llm.n_tokens, image_tokens,
                         llm.n_tokens + image_tokens - image_positions)


@contextlib.contextmanager
def kv_room(llm, extra_cells: int):
    """For one reply: llama-cpp-python sizes what is left for the reply (create_completion's
    max_tokens cut) and for prompt-lookup drafts as its _n_ctx less Llama.n_tokens, the
    positions; with M-RoPE images the cache holds `extra_cells` more cells than that, so it
    would decode past the full cache (llama_decode fails). Lowering _n_ctx by them makes those
    sums count cells: the reply ends with "length" when the cache is full, as a text one does."""
    if extra_cells <= 0:
        yield
        return
    full = llm._n_ctx
    llm._n_ctx = full - extra_cells
    try:
        yield
    finally:
        llm._n_ctx = full


class TextOnlyDraft:
    """Prompt-lookup decoding proposes the tokens that followed an earlier match of the last
    few; after an image those are NOT_TEXT positions, never a token: the draft is cut there."""

    def __init__(self, draft):
        self.draft = draft

    def __call__(self, input_ids, /, **kwargs):
        import numpy as np
        tokens = self.draft(input_ids, **kwargs)
        bad = np.flatnonzero(np.asarray(tokens) < 0)
        return tokens[:bad[0]] if len(bad) else tokens
