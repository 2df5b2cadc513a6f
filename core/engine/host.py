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

Where each command is answered: "load" / "unload" in host_load.py (HostLoad), "generate" /
"embed" in host_generate.py (HostGenerate); the loop, "cancel" and the client's lifetime here.
"""
from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
import traceback

from .host_generate import NEVER, HostGenerate
from .host_load import HostLoad
from .logs import route_output_to
from .prompt import TemplateError
from .types import ContextOverflowError, InvalidRequestError

GONE_GRACE_S = 0.75      # after the client is gone: time to stop cleanly before a hard exit
PARENT_POLL_S = 0.25


class Host(HostLoad, HostGenerate):
    """The command loop: load and unload are host_load.py's, generate and embed
    host_generate.py's; this class reads commands, answers them in order and exits with its
    client."""

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


def run_host(commands, events, log_path: str | None = None) -> None:
    """Entry point of the child process (a picklable top-level function for spawn)."""
    # Ctrl-C in a terminal reaches the whole process group; the client decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    route_output_to(log_path, "engine host")
    try:
        Host(commands, events).serve()
    finally:
        sys.stderr.flush()
