"""EngineClient: the app's and the CLI's handle on the inference host process.

Why a child process: llama.cpp aborts the whole process on some bad inputs and the OS kills it
on out-of-memory. Both must end the host, never the app. Unloading ends the host, so every byte
the model took goes back to the system.

Why multiprocessing "spawn" with Pipes (and not subprocess + stdin/stdout):
  * the same on Windows, macOS and Linux (spawn is the only start method on Windows and the
    default on macOS; fork would copy a Qt app's threads into the child);
  * it keeps working when the app is frozen with PyInstaller, provided the frozen entry point
    calls multiprocessing.freeze_support() first thing (app/main.py and the CLI main do);
  * messages are pickled tuples over two one-way Pipes (commands in, events out), so a cancel can
    be sent from any thread while another thread is reading tokens;
  * the host's stdout/stderr are pointed at a log file, so llama.cpp never writes to the terminal.
Death of the host (abort, segfault, kill -9, OOM) shows up as EOF on the event pipe or as the
process no longer being alive; the client then raises EngineError and forgets the host, so the
next load() starts a fresh one.

Use from one thread at a time (a worker thread in the app), except cancel(), which any thread
may call while generate() is running.

The parts: host_process.py (HostProcess: start, send, receive, death, stop), host_messages.py
(messages as the host gets them); this module is the public API.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .host_messages import host_messages
# describe_exit is re-exported: core.evaluate.child names it from here.
from .host_process import ERROR_KINDS, HostProcess, describe_exit, raise_for  # noqa: F401
from .kv_cache import (DEFAULT_FLASH_ATTN, DEFAULT_KV_TYPE, DEFAULT_PROMPT_LOOKUP,
                       check_kv_options, parse_flash_attn, parse_kv_type, parse_prompt_lookup)
from .types import Done, EngineError, LoadResult, SamplingParams, Token

DRAIN_SECONDS = 1.0   # a cancelled reply the caller stopped reading must end within this


def default_threads() -> int:
    """Physical cores: llama.cpp is slower with hyper-threads than without."""
    try:
        import psutil
        n = psutil.cpu_count(logical=False)
    except Exception:
        n = None
    return max(1, n or os.cpu_count() or 1)


class EngineClient(HostProcess):
    """Load, generate, embed, cancel: the public API. Starting, talking to and stopping the
    host process is host_process.py's (HostProcess)."""

    def __init__(self):
        self._proc = None
        self._commands = None      # our end: send commands
        self._events = None        # our end: receive events
        self._send_lock = threading.Lock()
        self._loaded: LoadResult | None = None
        self._gen_id = 0
        self._closing = False
        self._loading: str | None = None   # file name while a load is in flight (for messages)
        self._workers: tuple = ()          # RPC workers the host process has registered (core/rpc)

    # -- properties ------------------------------------------------------------------------------
    @property
    def loaded(self) -> LoadResult | None:
        return self._loaded

    @property
    def host_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None
    # -- public API ------------------------------------------------------------------------------
    def load(self, path, *, n_gpu_layers: int = 0, n_ctx: int = 2048,
             n_threads: int | None = None, type_k: str = DEFAULT_KV_TYPE,
             type_v: str = DEFAULT_KV_TYPE, flash_attn: str = DEFAULT_FLASH_ATTN,
             prompt_lookup: int = DEFAULT_PROMPT_LOOKUP, embedding: bool = False,
             rpc_servers=(), tensor_split=None, mmproj: str | None = None) -> LoadResult:
        """Raises EngineError (one line) for KV options llama.cpp refuses (kv_cache.py), before
        any process starts. mmproj: a vision projector GGUF for images in messages (checked
        against the model here, projector.py). embedding: a model loaded for embed(), not for generate().
        rpc_servers: workers ("host:port") whose devices llama.cpp fills first; tensor_split:
        layers per device in llama.cpp's order (workers, then local GPUs); see core/rpc."""
        path = str(Path(path))
        try:
            options = dict(type_k=parse_kv_type(type_k), type_v=parse_kv_type(type_v),
                           flash_attn=parse_flash_attn(flash_attn),
                           prompt_lookup=parse_prompt_lookup(prompt_lookup))
            check_kv_options(options["type_k"], options["type_v"], options["flash_attn"])
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        if not os.path.isfile(path):
            raise EngineError(f"{path}: no such file")
        if mmproj:
            from .projector import ProjectorError, check_projector
            try:
                mmproj = check_projector(path, mmproj)
            except ProjectorError as exc:
                raise EngineError(str(exc)) from None
        rpc_servers = tuple(str(e) for e in rpc_servers or ())
        if self._loaded is not None or (self._workers and self._workers != rpc_servers):
            # A fresh process per model: memory really goes back; and devices a host registered
            # stay registered, so other workers need another process.
            self._stop_host()
        if self._proc is None:
            self._start()
        threads = int(n_threads or default_threads())
        self._loading = os.path.basename(path)
        try:
            command = dict(path=path, n_gpu_layers=int(n_gpu_layers), n_ctx=int(n_ctx),
                           n_threads=threads, **options)
            if embedding:
                command["embedding"] = True
            if mmproj:
                command["mmproj"] = mmproj
            if rpc_servers:
                command.update(rpc_servers=list(rpc_servers), tensor_split=tensor_split)
                self._workers = rpc_servers
            self._send("load", command)
            kind, payload = self._receive()
        finally:
            self._loading = None
        raise_for(kind, payload)
        self._loaded = LoadResult.from_dict(payload)
        return self._loaded

    def generate(self, messages: list[dict], params: SamplingParams | None = None,
                 cancel=None, prompt: str | None = None,
                 tools: list[dict] | None = None) -> Iterator[Token | Done]:
        """Tokens, then one Done. `cancel`: a CancelToken (set from any thread); it is looked at
        while waiting too, so it stops a long prompt evaluation before the first token.
        `prompt`: continue this text as it is instead of the chat-templated `messages`.
        `tools`: function specs the chat template writes into the prompt; a message may carry
        `tool_calls` and `tool_call_id` (Hugging Face's chat-template names)."""
        if self._loaded is None:
            raise EngineError("no model is loaded")
        params = params or SamplingParams()
        self._gen_id += 1
        gen_id = self._gen_id
        command = dict(id=gen_id, messages=host_messages(messages), sampling=params.to_dict())
        if prompt is not None:
            command["prompt"] = str(prompt)
        if tools:
            command["tools"] = list(tools)
        self._send("generate", command)
        finished = False
        asked = False

        def watch_cancel() -> None:
            nonlocal asked
            if not asked and cancel is not None and cancel.cancelled:
                asked = True
                self.cancel()
        try:
            while True:
                watch_cancel()
                kind, payload = self._receive(idle=watch_cancel)
                if kind == "token":
                    yield (Token(payload) if isinstance(payload, str) else
                           Token(payload["text"], payload["logprobs"]))
                elif kind == "done":
                    finished = True
                    yield Done.from_dict(payload)
                    return
                elif kind in ERROR_KINDS:
                    finished = True
                    raise_for(kind, payload)
        finally:
            if not finished and self._proc is not None:
                # The caller stopped reading early: cancel and drain, so the next request
                # does not read this reply's leftovers.
                self._drain(gen_id)

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """(one normalised vector per text, prompt tokens) from a model loaded with
        embedding=True. Same one-caller rule as generate()."""
        if self._loaded is None:
            raise EngineError("no model is loaded")
        self._send("embed", {"texts": [str(t) for t in texts]})
        kind, payload = self._receive()
        raise_for(kind, payload)
        return payload["embeddings"], int(payload["prompt_tokens"])

    def _drain(self, gen_id: int) -> None:
        # The host stops a cancelled reply within one step of llama.cpp's graph; one that does
        # not answer in DRAIN_SECONDS is stuck (or busy in C) and is ended: the caller (Ctrl-C in
        # the CLI, a closed window) is not kept waiting, and the next load starts a fresh host.
        try:
            self._send("cancel", {"id": gen_id})
            deadline = time.monotonic() + DRAIN_SECONDS
            while True:
                kind, _ = self._receive(deadline)
                if kind == "done" or kind in ERROR_KINDS:
                    return
        except EngineError:
            pass
        except TimeoutError:
            self._kill()
    def cancel(self) -> None:
        """Stop the reply in progress (any thread); generate() ends with finish_reason cancelled."""
        with self._send_lock:
            if self._commands is None:
                return
            try:
                self._commands.send(("cancel", {"id": self._gen_id}))
            except (BrokenPipeError, EOFError, OSError):
                pass  # the host is gone; the generating thread reports that

    def unload(self) -> None:
        self._stop_host()

    def shutdown(self) -> None:
        self._stop_host()

    def __enter__(self) -> "EngineClient":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
