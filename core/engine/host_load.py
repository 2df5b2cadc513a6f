"""The engine host's load and unload commands: llama_cpp.Llama built from a GGUF file.

A mixin of host.Host (the command loop, protocol in host.py's docstring), which provides
self.llm, self.template, self.projector, self._abort_callback and self.stopping(). Workers
(core/rpc) are registered as devices before the load; a vision projector (vision.py) after it.
"""
from __future__ import annotations

import contextlib
import gc
import os
import time

from .kv_cache import DEFAULT_FLASH_ATTN, DEFAULT_KV_TYPE, check_kv_options, kv_ggml_type


class _NoChatFormatter:
    """Stands in for llama-cpp-python's Jinja2ChatFormatter, which Llama() builds for every chat
    template in the file at load time, with no limits: Jinja folds `'x' * 1500000000` while
    compiling, and a syntax error fails the load. The host renders templates itself, under
    limits (chat_template.py), and never uses llama-cpp-python's chat handlers."""

    def __init__(self, **_kwargs):
        pass

    def to_chat_handler(self):
        def unused(**_kwargs):
            raise RuntimeError("chat templates are rendered by the engine host, not llama-cpp-python")
        return unused


@contextlib.contextmanager
def _flash_attn_type(mode: str):
    """llama-cpp-python's Llama(flash_attn=) is a bool (enabled / disabled); llama.cpp's own
    "auto" is set on the context parameters while Llama() creates its context."""
    if mode != "auto":
        yield
        return
    import llama_cpp
    import llama_cpp._internals as internals
    base = internals.LlamaContext

    class AutoFlashAttnContext(base):
        def __init__(self, *, model, params, verbose=True):
            params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
            super().__init__(model=model, params=params, verbose=verbose)

    internals.LlamaContext = AutoFlashAttnContext
    try:
        yield
    finally:
        internals.LlamaContext = base


def _rss() -> int:
    import psutil
    return psutil.Process().memory_info().rss


class HostLoad:
    """Loading and unloading the model (host.Host's "load" and "unload" commands)."""

    def unload(self) -> None:
        if self.projector is not None:   # it holds the model: goes first
            self.projector.close()
            self.projector = None
        if self.llm is not None:
            self.llm.close()
            self.llm = None
            self._abort_callback = None
            gc.collect()

    def load(self, path: str, n_gpu_layers: int, n_ctx: int, n_threads: int,
             type_k: str = DEFAULT_KV_TYPE, type_v: str = DEFAULT_KV_TYPE,
             flash_attn: str = DEFAULT_FLASH_ATTN, prompt_lookup: int = 0,
             embedding: bool = False, rpc_servers=(), tensor_split=None,
             mmproj: str | None = None) -> dict:
        self.unload()
        check_kv_options(type_k, type_v, flash_attn)   # llama.cpp would only log why it failed
        import llama_cpp   # before measuring: rss_before..rss_after is what the model costs
        import llama_cpp.llama_chat_format
        llama_cpp.llama_chat_format.Jinja2ChatFormatter = _NoChatFormatter
        from quantdesk.core.rpc.placement import LoadLog, offloaded_layers, parse_load_log
        if rpc_servers:   # workers become devices first (one line if one cannot be used)
            from quantdesk.core.rpc.devices import register_workers
            register_workers(rpc_servers)
        rss_before = _rss()
        start = time.perf_counter()
        offload = bool(llama_cpp.llama_supports_gpu_offload())
        draft = None
        if prompt_lookup:
            from llama_cpp.llama_speculative import LlamaPromptLookupDecoding
            draft = LlamaPromptLookupDecoding(num_pred_tokens=int(prompt_lookup))
        try:
            kw = dict(model_path=path, n_gpu_layers=n_gpu_layers if offload else 0, n_ctx=n_ctx,
                      n_threads=n_threads, n_threads_batch=n_threads,
                      type_k=kv_ggml_type(type_k), type_v=kv_ggml_type(type_v),
                      flash_attn=flash_attn == "on", draft_model=draft, verbose=False)
            if embedding:   # the server's /v1/embeddings: one sequence is one batch, no drafts
                kw.update(embedding=True, n_batch=n_ctx, n_ubatch=n_ctx, draft_model=None)
            if tensor_split:   # layers per device, in llama.cpp's device order (workers first)
                kw["tensor_split"] = [float(x) for x in tensor_split]
            with _flash_attn_type(flash_attn), LoadLog() as load_log:
                llm = llama_cpp.Llama(**kw)
                if embedding and llm.pooling_type() == llama_cpp.LLAMA_POOLING_TYPE_NONE:
                    llm.close()   # a chat model names no pooling: mean of its tokens, one vector
                    load_log.lines.clear()   # the placement is the second load's
                    llm = llama_cpp.Llama(**kw, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        except ValueError as exc:  # llama-cpp-python's "Failed to load model from file: ..."
            raise RuntimeError(f"llama.cpp could not load {os.path.basename(path)} ({exc})") from None
        self.llm = llm
        self.template = llm.metadata.get("tokenizer.chat_template") or None
        if mmproj:
            from .vision import Projector, TextOnlyDraft
            try:
                self.projector = Projector(llm, mmproj, n_threads=n_threads,
                                           use_gpu=offload and n_gpu_layers != 0)
                if llm.draft_model is not None:
                    llm.draft_model = TextOnlyDraft(llm.draft_model)
            except BaseException:
                self.unload()
                raise
        load_seconds = time.perf_counter() - start
        # llama_decode asks this between the steps of its graph: cancel (and a client that went
        # away) stop a long prompt evaluation there, not only between two sampled tokens.
        self._abort_callback = llama_cpp.ggml_abort_callback(lambda _data: self.stopping())
        llama_cpp.llama_set_abort_callback(llm.ctx, self._abort_callback, None)
        n_layers = int(llama_cpp.llama_model_n_layer(llm.model))
        # What llama.cpp did, from its load log: an RPC build "supports offload" even with no
        # device at all, so n_gpu_layers alone would overstate it.
        from quantdesk.core.rpc.devices import device_endpoints
        placement = parse_load_log(load_log.text, device_endpoints())
        used_layers = offloaded_layers(placement)
        if used_layers is None:
            used_layers = 0 if not offload else (
                n_layers + 1 if n_gpu_layers < 0 else min(n_gpu_layers, n_layers + 1))
        return dict(path=path, n_ctx=llm.n_ctx(), n_gpu_layers=used_layers,
                    load_seconds=load_seconds, has_chat_template=self.template is not None,
                    n_ctx_train=int(llm._model.n_ctx_train()), rss_before=rss_before,
                    rss_after=_rss(), n_threads=n_threads, n_layers=n_layers,
                    gpu_offload_supported=offload, type_k=type_k, type_v=type_v,
                    flash_attn=flash_attn, prompt_lookup=int(prompt_lookup),
                    rpc_servers=list(rpc_servers), placement=[p.to_json() for p in placement],
                    mmproj=mmproj or "")
