"""One GGUF model opened through llama.cpp's C API — used only inside the evaluation child process.

The low-level API (not llama_cpp.Llama) because an evaluation needs what the high-level class does
not expose: a batch that asks for logits only where they are scored (as llama-perplexity does),
and, for the importance matrix, the graph evaluation callback `cb_eval` set before the context
is created.

`mtp=True` (a model with a multi-token-prediction layer, GLM-4.5's): the model is loaded with that
layer and a second, MTP context runs it over each window the way llama.cpp's MTP drafting does
(`mtp_pass`), so the evaluation callback sees the layer's matrix multiplications too.
"""
from __future__ import annotations

import ctypes
import os

import numpy as np


class SessionError(RuntimeError):
    pass


def _quiet_logs() -> None:
    """llama.cpp logs through a callback; drop everything below errors (stderr goes to a log file)."""
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _log(level, text, _user):
        if level >= 4 and text:         # GGML_LOG_LEVEL_ERROR
            os.write(2, text)
    _quiet_logs.keep = _log             # the C side keeps the pointer: keep the object alive
    llama_cpp.llama_log_set(_log, ctypes.c_void_p())


class LlamaSession:
    def __init__(self, path: str, *, n_ctx: int, n_threads: int, n_gpu_layers: int = 0,
                 cb_eval=None, mtp: bool = False):
        import llama_cpp
        self.lib = llama_cpp
        _quiet_logs()
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers if llama_cpp.llama_supports_gpu_offload() else 0
        mparams.load_mtp = mtp
        self.model = llama_cpp.llama_model_load_from_file(path.encode("utf-8"), mparams)
        if not self.model:
            raise SessionError(f"llama.cpp could not load {os.path.basename(path)}")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_ctx
        cparams.n_ubatch = min(n_ctx, 512)
        cparams.n_seq_max = 1
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        if cb_eval is not None:
            self._cb = llama_cpp.ggml_backend_sched_eval_callback(cb_eval)
            cparams.cb_eval = self._cb
            cparams.cb_eval_user_data = None
        self.mtp_ctx = None
        if mtp:
            # the trunk hands the MTP layer its final normed hidden state (llama.cpp's h_nextn,
            # the same tensor as the per-token embeddings output with no pooling)
            tparams = llama_cpp.llama_context_params.from_buffer_copy(cparams)
            tparams.embeddings, tparams.pooling_type = True, llama_cpp.LLAMA_POOLING_TYPE_NONE
            cparams.ctx_type = llama_cpp.LLAMA_CONTEXT_TYPE_MTP
            self.mtp_ctx = llama_cpp.llama_init_from_model(self.model, cparams)
            cparams = tparams
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx or (mtp and not self.mtp_ctx):
            self.close()
            raise SessionError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.n_ctx = n_ctx
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(self.vocab)) if self.add_bos else None
        self.batch = llama_cpp.llama_batch_init(n_ctx, 0, 1)

    def tokenize(self, text: str) -> np.ndarray:
        """Like llama-perplexity's common_tokenize(ctx, text, add_special=true): BOS if the model adds it."""
        raw = text.encode("utf-8")
        n = -self.lib.llama_tokenize(self.vocab, raw, len(raw), None, 0, True, False)
        if n <= 0:
            return np.zeros(0, dtype=np.int32)
        buf = (self.lib.llama_token * n)()
        got = self.lib.llama_tokenize(self.vocab, raw, len(raw), buf, n, True, False)
        if got < 0:
            raise SessionError("tokenization failed")
        return np.ctypeslib.as_array(buf)[:got].astype(np.int32)

    def logits(self, tokens: np.ndarray, first: int) -> np.ndarray:
        """Evaluate one window from an empty cache; float32 logits of positions first..end (copied)."""
        lib, batch = self.lib, self.batch
        lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
        n = len(tokens)
        for i in range(n):
            batch.token[i] = int(tokens[i])
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if i >= first else 0
        batch.n_tokens = n
        rc = lib.llama_decode(self.ctx, batch)
        if rc != 0:
            raise SessionError(f"llama.cpp could not evaluate the text (llama_decode returned {rc})")
        ptr = lib.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(n - first, self.n_vocab)).copy()

    def mtp_pass(self, tokens: np.ndarray) -> None:
        """Run the MTP layer over the window `logits` evaluated last, as common/speculative.cpp's
        MTP drafting feeds it: token k paired with the trunk's hidden state of position k-1
        (zeros before the first), logits at every position."""
        import llama_cpp as lib
        n = len(tokens)
        n_embd = int(lib.llama_model_n_embd(self.model))
        h = np.ctypeslib.as_array(lib.llama_get_embeddings(self.ctx), shape=(n, n_embd))
        rows = np.zeros((n, n_embd), dtype=np.float32)
        rows[1:] = h[:-1]
        lib.llama_memory_clear(lib.llama_get_memory(self.mtp_ctx), True)
        batch = lib.llama_batch_ext_init(self.mtp_ctx)
        try:
            for i in range(n):
                idx = lib.llama_batch_ext_add_token(batch, 0, int(tokens[i]))
                lib.llama_batch_ext_set_pos(batch, idx, (ctypes.c_int32 * 1)(i))
                row = lib.llama_embd(rows[i].ctypes.data_as(ctypes.POINTER(ctypes.c_float)), 1, n_embd)
                if not lib.llama_batch_ext_set_embd_token(batch, idx, row):
                    raise SessionError("llama.cpp refused the MTP layer's input")
                lib.llama_batch_ext_set_output_logits(batch, idx, True)
            rc = lib.llama_process(self.mtp_ctx, lib.LLAMA_PROCESS_TYPE_DECODE, batch)
        finally:
            lib.llama_batch_ext_free(batch)
        if rc != 0:
            raise SessionError(f"llama.cpp could not run the MTP layer (llama_process returned {rc})")

    def close(self) -> None:
        lib = self.lib
        if getattr(self, "mtp_ctx", None):
            lib.llama_free(self.mtp_ctx)
            self.mtp_ctx = None
        if getattr(self, "batch", None) is not None:
            lib.llama_batch_free(self.batch)
            self.batch = None
        if getattr(self, "ctx", None):
            lib.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            lib.llama_model_free(self.model)
            self.model = None
