"""The inference host: a child process that owns llama_cpp.Llama.

Started by EngineClient through multiprocessing's "spawn" context (see client.py for why), it
talks over two one-way Pipes: commands in, events out. A reader thread takes commands off the
pipe so that "cancel" is seen between two tokens even while the main thread is generating.

Commands (client -> host), each a (kind, payload) tuple:
    ("load", {path, n_gpu_layers, n_ctx, n_threads,     -> ("loaded", LoadResult fields) | ("error", msg)
              type_k, type_v, flash_attn,                  KV-cache type names, "on"/"off"/"auto",
              prompt_lookup[, embedding]                   draft tokens per step (0: off); kv_cache.py
              [, rpc_servers, tensor_split]              workers ("host:port") registered as devices
                                                           first, layers per device (core/rpc)
              [, mmproj]})                                 a vision projector GGUF (vision.py); the
                                                           LoadResult's mmproj names it
    ("embed", {texts})                                  -> ("embedded", {embeddings, prompt_tokens}) | ("error", msg)
    ("generate", {id, messages, sampling[, tools]})    -> ("token", text)* then ("done", Done fields) | ("error", msg)
                                                           messages may carry tool_calls / tool_call_id, and
                                                           tools go to the chat template (Hugging Face's names);
                                                           with sampling["logprobs"] set, each token event is
                                                           ("token", {text, logprobs}) (logprobs.py)
                                                           a message may carry `images` (encoded bytes,
                                                           PNG/JPEG...) with one "<__media__>" in its
                                                           content per image (images.py); Done's
                                                           image_tokens counts what they took
                                                           | ("model_error", msg): the model file is at fault
                                                             (its chat template), not the engine
    ("cancel", {id})                                    ends generation `id` early (finish_reason "cancelled"),
                                                        also in the middle of the prompt's evaluation
    ("unload", {})                                      -> ("unloaded", {})  frees the model, keeps the process
    ("shutdown", {})                                    the process exits
llama.cpp writes its logs to stdout/stderr from C; both file descriptors are pointed at a log file
so nothing ever lands in the user's terminal (or in `quantdesk chat --json` output).

A host never outlives its client. The client is gone when the command pipe reads EOF or when the
parent process has ended (another process may still hold the pipe open): then the host stops what
it is doing and exits, and if that takes more than GONE_GRACE_S (a template being rendered, a
load in progress) it exits at once. Stopping mid-prompt works through llama.cpp's abort callback,
which llama_decode polls between the steps of its graph, so a long prompt evaluation ends within
one step, not at the next token.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import queue
import random
import re
import signal
import sys
import threading
import time
import traceback

from .kv_cache import DEFAULT_FLASH_ATTN, DEFAULT_KV_TYPE, check_kv_options, kv_ggml_type
from .logprobs import TokenRecorder
from .logs import route_output_to
from .prompt import Prompt, TemplateError, chat_template_prompt, completion_prompt
from .types import ContextOverflowError, InvalidRequestError

GONE_GRACE_S = 0.75      # after the client is gone: time to stop cleanly before a hard exit
PARENT_POLL_S = 0.25
NEVER = 1 << 62          # a generation id no cancel reaches

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


class Host:
    def __init__(self, commands, events):
        self.commands = commands
        self.events = events
        self.inbox: queue.Queue = queue.Queue()
        self.cancelled_id = -1           # highest generation id the client cancelled
        self.current_id = NEVER          # the generation in progress
        self.client_gone = False
        self.llm = None
        self.template: str | None = None
        self.projector = None            # vision.Projector when loaded with an mmproj
        self._abort_callback = None      # the ctypes callback llama.cpp holds: keep it alive

    def stopping(self) -> bool:
        """Should the work in progress stop (the client cancelled it, or is gone)?"""
        return self.client_gone or self.cancelled_id >= self.current_id

    def lose_client(self, why: str) -> None:
        """The client is gone: stop, and exit even if stopping does not finish in time."""
        if self.client_gone:
            return
        self.client_gone = True
        self.cancelled_id = NEVER
        print(f"engine host: {why}; exiting", file=sys.stderr)
        self.inbox.put(("shutdown", {}))
        timer = threading.Timer(GONE_GRACE_S, os._exit, (0,))
        timer.daemon = True
        timer.start()

    def watch_parent(self) -> None:
        """The pipe reads EOF when the client dies, unless another process inherited its end;
        the parent's end is the other sign."""
        import psutil
        try:
            parent = psutil.Process(os.getppid())
        except psutil.Error:
            self.lose_client("the client process is gone")
            return
        while not self.client_gone:
            time.sleep(PARENT_POLL_S)
            try:
                alive = parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            if not alive:
                self.lose_client("the client process is gone")
                return

    # -- reader thread ---------------------------------------------------------------------------
    def read_commands(self) -> None:
        while True:
            try:
                kind, payload = self.commands.recv()
            except (EOFError, OSError):       # the client is gone: stop whatever we do and exit
                self.lose_client("the client closed its pipe")
                return
            if kind == "cancel":
                self.cancelled_id = max(self.cancelled_id, int(payload.get("id", 0)))
            else:
                self.inbox.put((kind, payload))
            if kind == "shutdown":
                return

    # -- main loop -------------------------------------------------------------------------------
    def serve(self) -> None:
        threading.Thread(target=self.read_commands, name="engine-commands", daemon=True).start()
        threading.Thread(target=self.watch_parent, name="engine-parent", daemon=True).start()
        while True:
            kind, payload = self.inbox.get()
            if kind == "shutdown":
                self.unload()     # free llama.cpp before interpreter teardown, not during it
                return
            try:
                if kind == "load":
                    self.events.send(("loaded", self.load(**payload)))
                elif kind == "embed":
                    self.events.send(("embedded", self.embed(payload["texts"])))
                elif kind == "generate":
                    self.generate(payload["id"], payload["messages"], payload["sampling"],
                                  payload.get("prompt"), payload.get("tools"))
                elif kind == "unload":
                    self.unload()
                    self.events.send(("unloaded", {}))
                else:
                    self.events.send(("error", f"unknown engine command {kind!r}"))
            except (BrokenPipeError, EOFError):
                self.unload()
                return
            except TemplateError as exc:   # the file's fault: the CLI says so with exit status 2
                self.events.send(("model_error", str(exc)))
            except InvalidRequestError as exc:   # the request's fault: the server answers 400
                kind = "context_error" if isinstance(exc, ContextOverflowError) else "request_error"
                self.events.send((kind, str(exc)))
            except Exception as exc:  # report, stay up: the client decides what to do next
                traceback.print_exc()
                msg = " ".join(str(exc).split()) or type(exc).__name__
                self.events.send(("error", msg))

    def unload(self) -> None:
        if self.projector is not None:   # it holds the model: goes first
            self.projector.close()
            self.projector = None
        if self.llm is not None:
            self.llm.close()
            self.llm = None
            self._abort_callback = None
            gc.collect()

    def _forget_cut_batch(self) -> None:
        """After the abort callback cut a batch short: empty the KV cache and llama-cpp-python's
        token record, so the next reply is evaluated from scratch. The cut batch can leave cells
        behind (seen with flash attention on the CPU: the next greedy reply differed from a fresh
        load's); re-reading a prompt once after a Stop is cheap, a wrong reply is not."""
        import llama_cpp
        self.llm.reset()
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.llm.ctx), True)

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

    def build_prompt(self, messages: list[dict], tools: list[dict] | None = None,
                     variables: dict | None = None):
        llm = self.llm
        if self.template is None:
            return completion_prompt(messages)
        model = llm._model
        eos, bos = llm.token_eos(), llm.token_bos()
        return chat_template_prompt(
            self.template, messages,
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            eos_token=model.token_get_text(eos) if eos != -1 else "", tools=tools,
            variables=variables)

    def embed(self, texts: list[str]) -> dict:
        """One pooled, normalised vector per text; a text longer than the context is refused
        (llama-cpp-python would cut it silently)."""
        llm = self.llm
        if llm is None:
            raise RuntimeError("no model is loaded")
        if not llm.context_params.embeddings:
            raise InvalidRequestError("this model was loaded for chat, not for embeddings")
        counts = [len(llm.tokenize(t.encode("utf-8"))) for t in texts]
        for i, n in enumerate(counts):
            if n > llm.n_batch:
                raise ContextOverflowError(f"input {i} ({n} tokens) does not fit the context "
                                           f"size ({llm.n_batch})")
        vectors = llm.embed(texts, normalize=True, truncate=False)
        return {"embeddings": vectors, "prompt_tokens": sum(counts)}

    @staticmethod
    def grammar(json_schema: str | None, prefix: str = "", suffix: str = ""):
        """llama.cpp's grammar for a JSON schema: every reply parses and follows it, written
        between `prefix` and `suffix` (a tool call's own markers, "<tool_call>\n" ...)."""
        if not json_schema:
            return None
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import json_schema_to_gbnf
        try:
            if not prefix and not suffix:
                return LlamaGrammar.from_json_schema(json_schema, verbose=False)
            rules = re.sub(r"^root ::=", "json-root ::=", json_schema_to_gbnf(json_schema),
                           flags=re.M)
            root = f"root ::= {json.dumps(prefix)} json-root {json.dumps(suffix)}\n"
            return LlamaGrammar.from_string(root + rules, verbose=False)
        except Exception as exc:  # noqa: BLE001 - the converter raises many kinds
            msg = " ".join(str(exc).split()) or type(exc).__name__
            raise InvalidRequestError(f"the JSON schema cannot be followed ({msg})") from None

    def generate(self, gen_id: int, messages: list[dict], sampling: dict,
                 raw_prompt: str | None = None, tools: list[dict] | None = None) -> None:
        self.current_id = gen_id
        try:
            self._generate(gen_id, messages, sampling, raw_prompt, tools)
        finally:
            self.current_id = NEVER

    def _generate(self, gen_id: int, messages: list[dict], sampling: dict,
                  raw_prompt: str | None = None, tools: list[dict] | None = None) -> None:
        llm = self.llm
        if llm is None:
            raise RuntimeError("no model is loaded")
        images = [data for m in messages for data in m.get("images") or ()]
        if images and self.projector is None:
            raise InvalidRequestError(
                "this model was loaded without a vision projector (mmproj), so it cannot read "
                "images; load it with its mmproj file (--mmproj), or leave the image out")
        messages = [{k: v for k, v in m.items() if k != "images"} for m in messages]
        # A raw prompt (the server's /v1/completions) is continued as it is, no chat template.
        prompt = (self.build_prompt(messages, tools, sampling.get("template_vars"))
                  if raw_prompt is None else
                  Prompt(raw_prompt, add_bos=True, used_chat_template=False))
        n_ctx = llm.n_ctx()
        start = time.perf_counter()
        count = 0
        first_at = start
        cancelled = False
        image_tokens = extra_cells = 0
        if images:   # evaluated here, with the images; create_completion only samples
            try:
                n_prompt, image_tokens, cells = self.projector.evaluate(
                    llm, prompt.text, images, self.stopping, add_bos=prompt.add_bos)
                extra_cells = cells - n_prompt   # M-RoPE images: more cells than positions
            except RuntimeError:
                if not self.stopping():
                    raise
                self._forget_cut_batch()
                self.events.send(("done", dict(
                    prompt_tokens=0, completion_tokens=0, tokens_per_second=0.0,
                    finish_reason="cancelled", used_chat_template=prompt.used_chat_template,
                    n_ctx=n_ctx)))
                return
            tokens = llm.input_ids[:n_prompt].tolist()
        else:
            tokens = llm.tokenize(prompt.text.encode("utf-8"), add_bos=prompt.add_bos,
                                  special=True)
        if not tokens:   # llama-cpp-python asserts on an empty prompt
            raise TemplateError("the model's chat template made a prompt without tokens for "
                                "this conversation (the template in the model file is faulty)")
        if len(tokens) >= n_ctx:
            raise ContextOverflowError(f"the conversation ({len(tokens)} tokens) does not fit the context "
                               f"size ({n_ctx}); start a new chat or load with a larger context")
        n_prompt = len(tokens)

        def between_tokens(input_ids, logits) -> bool:
            # Called by llama-cpp-python after every sampled token: count it, honour cancel.
            # It calls it once more after the loop, with no new token: the count is of the
            # tokens Llama.sample gave (the recorder's), not read from input_ids, whose length
            # with prompt-lookup drafts can be anything from prompt + count - 1 on.
            nonlocal count, first_at, cancelled
            if count == 0:
                first_at = time.perf_counter()
            if len(recorder.chosen) > count:
                count += 1
            if self.stopping():
                cancelled = True
            return cancelled

        from llama_cpp import StoppingCriteriaList
        # llama-cpp-python's own "no seed" draws from a fixed generator (every reply the same);
        # -1 means a fresh reply each time, so draw one here.
        seed = int(sampling.get("seed", -1))
        if seed < 0:
            seed = random.randrange(2**31)
        finish = "length"
        grammar = self.grammar(sampling.get("json_schema"), sampling.get("json_prefix") or "",
                               sampling.get("json_suffix") or "")
        stops = list(sampling.get("stop") or ())
        recorder = TokenRecorder(llm, sampling.get("logprobs"))
        from .vision import kv_room
        try:
            with recorder.sampling(), kv_room(llm, extra_cells):
                stream = llm.create_completion(
                    list(tokens), max_tokens=int(sampling["max_tokens"]),
                    temperature=float(sampling["temperature"]),
                    top_p=float(sampling["top_p"]), top_k=int(sampling["top_k"]),
                    min_p=float(sampling["min_p"]),
                    repeat_penalty=float(sampling["repeat_penalty"]),
                    seed=seed, stop=prompt.stop + stops, stream=True,
                    stopping_criteria=StoppingCriteriaList([between_tokens]), grammar=grammar)
                for chunk in stream:
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        entries = recorder.take()
                        self.events.send(("token", choice["text"] if entries is None else
                                          {"text": choice["text"], "logprobs": entries}))
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
        except RuntimeError:
            # The abort callback stopped llama_decode ("llama_decode returned 2"); the cut batch
            # is forgotten below, so the next reply starts from a consistent state.
            if not self.stopping():
                raise
            cancelled = True
            self._forget_cut_batch()
            if count == 0:
                first_at = time.perf_counter()
        end = time.perf_counter()
        if cancelled:
            finish = "cancelled"
        gen_seconds = end - first_at
        rate = (count - 1) / gen_seconds if count > 1 and gen_seconds > 0 else (
            count / (end - start) if end > start else 0.0)
        self.events.send(("done", dict(
            prompt_tokens=n_prompt + extra_cells, completion_tokens=count,
            tokens_per_second=rate,
            finish_reason=finish, used_chat_template=prompt.used_chat_template, n_ctx=n_ctx,
            image_tokens=image_tokens,
            prompt_seconds=first_at - start, generation_seconds=gen_seconds,
            stop_sequence=recorder.stop_sequence(stops) if finish == "stop" else None)))


def run_host(commands, events, log_path: str | None = None) -> None:
    """Entry point of the child process (a picklable top-level function for spawn)."""
    # Ctrl-C in a terminal reaches the whole process group; the client decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    route_output_to(log_path, "engine host")
    try:
        Host(commands, events).serve()
    finally:
        sys.stderr.flush()
