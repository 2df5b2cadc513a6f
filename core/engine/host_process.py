"""The client's side of the engine host process: start it, send commands, read events, notice
its death and stop it. A mixin of client.EngineClient, whose __init__ holds the state used here
(self._proc, _commands, _events, _send_lock, _closing, _loading, _workers, _loaded, _gen_id).

Death of the host (abort, segfault, kill -9, OOM) shows up as EOF on the event pipe or as the
process no longer being alive: _died() turns it into an EngineError that says why (the exit
status, the worker that stopped answering, the file being loaded) and forgets the host.
"""
from __future__ import annotations

import signal
import time

from .logs import log_path
from .types import ContextOverflowError, EngineError, InvalidRequestError, ModelFileError

POLL_SECONDS = 0.25
STOP_SECONDS = 1.0    # a host asked to shut down must exit within this, or it is terminated
ERROR_KINDS = ("error", "model_error", "context_error", "request_error")


def raise_for(kind: str, payload) -> None:
    """The exception an error event stands for (nothing for other events)."""
    if kind == "model_error":
        raise ModelFileError(payload)
    if kind == "context_error":
        raise ContextOverflowError(payload)
    if kind == "request_error":
        raise InvalidRequestError(payload)
    if kind == "error":
        raise EngineError(payload)


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


def end_process(proc, grace: float) -> None:
    """Give `proc` `grace` seconds to exit on its own, then terminate it, then kill it."""
    proc.join(grace)
    if proc.is_alive():
        proc.terminate()
        proc.join(2)
    if proc.is_alive():
        proc.kill()
        proc.join(2)


class HostProcess:
    """Process management for EngineClient."""

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
        end_process(proc, timeout)
        self._forget()

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None:
            proc.kill()
            proc.join(2)
        self._forget()
