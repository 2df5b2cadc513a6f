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
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .kv_cache import (DEFAULT_FLASH_ATTN, DEFAULT_KV_TYPE, DEFAULT_PROMPT_LOOKUP,
                       check_kv_options, parse_flash_attn, parse_kv_type, parse_prompt_lookup)
from .images import host_content
from .logs import log_path
from .types import (ContextOverflowError, Done, EngineError, InvalidRequestError, LoadResult,
                    ModelFileError, SamplingParams, Token)

POLL_SECONDS = 0.25
DRAIN_SECONDS = 1.0   # a cancelled reply the caller stopped reading must end within this
STOP_SECONDS = 1.0    # a host asked to shut down must exit within this, or it is terminated
ERROR_KINDS = ("error", "model_error", "context_error", "request_error")


def _raise_for(kind: str, payload) -> None:
    if kind == "model_error":
        raise ModelFileError(payload)
    if kind == "context_error":
        raise ContextOverflowError(payload)
    if kind == "request_error":
        raise InvalidRequestError(payload)
    if kind == "error":
        raise EngineError(payload)


def default_threads() -> int:
    """Physical cores: llama.cpp is slower with hyper-threads than without."""
    try:
        import psutil
        n = psutil.cpu_count(logical=False)
    except Exception:
        n = None
    return max(1, n or os.cpu_count() or 1)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        hint = ", possibly out of memory" if -code == getattr(signal, "SIGKILL", 9) else ""
        return f"killed by signal {-code} {name}{hint}"
    if code > 255:  # Windows NTSTATUS, e.g. 0xC0000005 access violation
        return f"exit code 0x{code & 0xFFFFFFFF:08X}"
    return f"exit status {code}"


def _gone_workers(workers) -> list[str]:
    if not workers:
        return []
    from quantdesk.core.rpc.wire import reachable
    return [w for w in workers if not reachable(w)]


def _clean(message: dict, first_image: int = 1) -> dict:
    """A message as the host gets it: role and text content, and the tool fields only when
    present (templates test `'tool_calls' in message`); content parts with images become text
    with a marker per image plus `images` (images.py; InvalidRequestError for a bad one)."""
    text, images = host_content(message.get("content"), first_image)
    out = {"role": str(message["role"]), "content": text}
    if images:
        out["images"] = images
    for key in ("tool_calls", "tool_call_id", "name"):
        if message.get(key):
            out[key] = message[key]
    return out


def _clean_all(messages: list[dict]) -> list[dict]:
    out, n = [], 1
    for m in messages:
        out.append(_clean(m, n))
        n += len(out[-1].get("images", ()))
    return out


class EngineClient:
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

    # -- process management ----------------------------------------------------------------------
    def _start(self) -> None:
        import multiprocessing as mp
        from .host import run_host

        ctx = mp.get_context("spawn")
        cmd_recv, cmd_send = ctx.Pipe(duplex=False)
        evt_recv, evt_send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=run_host, args=(cmd_recv, evt_send, str(log_path())),
                           name="quantdesk-engine-host", daemon=True)
        proc.start()
        # Close the child's ends here, so its death reads as EOF on ours.
        cmd_recv.close()
        evt_send.close()
        self._proc, self._commands, self._events = proc, cmd_send, evt_recv
        self._closing = False

    def _send(self, kind: str, payload: dict) -> None:
        with self._send_lock:
            if self._commands is None:
                raise EngineError("no model is loaded")
            try:
                self._commands.send((kind, payload))
            except (BrokenPipeError, EOFError, OSError):
                raise self._died() from None

    def _receive(self, deadline: float | None = None, idle=None):
        """Next event from the host; raises EngineError (and forgets the host) if it died,
        TimeoutError past `deadline` (time.monotonic()). `idle()` runs at every quiet poll."""
        events, proc = self._events, self._proc
        if events is None:
            raise EngineError("no model is loaded")
        try:
            while not events.poll(POLL_SECONDS if deadline is None else
                                  max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))):
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError
                if idle is not None:
                    idle()
                if not proc.is_alive():
                    if events.poll(0):   # it wrote something before dying: read that first
                        break
                    raise self._died()
            return events.recv()
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> EngineError:
        proc, closing, loading = self._proc, self._closing, self._loading
        code = None                      # None: "stopped responding"
        if proc is not None:
            proc.join(timeout=2)
            code = proc.exitcode
            if code is None:             # its pipe broke but it lingers: don't leave it behind
                proc.kill()
                proc.join(timeout=2)
        workers, self._workers = self._workers, ()
        self._forget()
        if closing:
            return EngineError("the model was unloaded")
        gone = _gone_workers(workers)
        if gone:   # ggml-rpc aborts the host when a worker stops answering: say which one
            return EngineError(f"worker {', '.join(gone)} stopped answering and the model process "
                               f"ended ({describe_exit(code)}); load the model again to continue "
                               f"without it")
        if loading:
            return EngineError(f"the model process exited unexpectedly while loading {loading} "
                               f"({describe_exit(code)}); details in {log_path()}")
        return EngineError(f"the model process exited unexpectedly ({describe_exit(code)}); "
                           f"load the model again to continue")

    def _forget(self) -> None:
        for conn in (self._commands, self._events):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
        self._proc = self._commands = self._events = None
        self._loaded = None
        self._workers = ()

    def _stop_host(self, timeout: float = STOP_SECONDS) -> None:
        proc = self._proc
        if proc is None:
            return
        self._closing = True
        try:
            with self._send_lock:
                self._commands.send(("cancel", {"id": self._gen_id}))
                self._commands.send(("shutdown", {}))
        except (BrokenPipeError, EOFError, OSError, AttributeError):
            pass
        proc.join(timeout)
        if proc.is_alive():
            proc.terminate()
            proc.join(2)
        if proc.is_alive():
            proc.kill()
            proc.join(2)
        self._forget()

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
        _raise_for(kind, payload)
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
        command = dict(id=gen_id, messages=_clean_all(messages), sampling=params.to_dict())
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
                    _raise_for(kind, payload)
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
        _raise_for(kind, payload)
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

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None:
            proc.kill()
            proc.join(2)
        self._forget()

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
