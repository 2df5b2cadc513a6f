"""Run one llama.cpp job (see jobs.py) in a child process, with progress and cancel.

Why a child process, as for chat (core/engine): llama.cpp aborts the whole process on some bad
inputs and the OS kills it when memory runs out; either must end the job, never the app. Each job
gets a fresh process, so the memory of every model it loaded goes back when it ends. "spawn" for
the same reasons as the engine host (Windows/macOS default, no Qt threads copied, PyInstaller).

Messages child -> parent over a one-way Pipe: ("progress", done, total), ("result", obj),
("error", one_line), ("cancelled", None). Cancel is a shared Event the child checks between chunks;
a child that does not stop within a grace period is terminated.
"""
from __future__ import annotations

import signal
import sys
import time
import traceback
from typing import Any, Callable

from quantdesk.core.engine.client import describe_exit
from quantdesk.core.engine.host_process import end_process
from quantdesk.core.engine.logs import log_path, route_output_to

POLL_SECONDS = 0.2
CANCEL_GRACE_SECONDS = 10.0


class EvaluationError(Exception):
    """One clear line for the user (bad file, model process died, text too short, ...)."""


class Cancelled(EvaluationError):
    """The user cancelled; whatever was half-written has been removed."""


def _evaluate_log() -> str | None:
    try:
        return str(log_path("evaluate.log"))
    except OSError:
        return None


def _child_main(job: str, payload: dict, conn, cancel_event, log_path: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    route_output_to(log_path, "evaluation job")

    def progress(done: int, total: int) -> None:
        conn.send(("progress", done, total))

    try:
        from . import jobs          # imports llama_cpp: inside the try, so a broken install reports
        result = getattr(jobs, job)(payload, progress, cancel_event.is_set)
        conn.send(("result", result))
    except Exception as exc:
        if type(exc).__name__ == "JobCancelled":
            conn.send(("cancelled", None))
        else:
            traceback.print_exc()
            conn.send(("error", " ".join(str(exc).split()) or type(exc).__name__))
    finally:
        sys.stderr.flush()
        conn.close()




def run_job(job: str, payload: dict, *, progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> Any:
    """Run jobs.<job>(payload) in a fresh child process and return its result (blocking)."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    cancel_event = ctx.Event()
    proc = ctx.Process(target=_child_main, args=(job, payload, send, cancel_event, _evaluate_log()),
                       name=f"quantdesk-{job}", daemon=True)
    proc.start()
    send.close()            # the child's end: its death now reads as EOF here
    cancel_sent_at = None
    try:
        while True:
            if cancelled is not None and cancelled() and cancel_sent_at is None:
                cancel_event.set()
                cancel_sent_at = time.monotonic()
            if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > CANCEL_GRACE_SECONDS:
                raise Cancelled("cancelled")
            try:
                if not recv.poll(POLL_SECONDS):
                    if not proc.is_alive() and not recv.poll(0):
                        raise EOFError
                    continue
                msg = recv.recv()
            except (EOFError, OSError):
                proc.join(2)
                raise EvaluationError(f"the evaluation process exited unexpectedly "
                                      f"({describe_exit(proc.exitcode)})") from None
            kind = msg[0]
            if kind == "progress":
                if progress is not None:
                    progress(msg[1], msg[2])
            elif kind == "result":
                return msg[1]
            elif kind == "cancelled":
                raise Cancelled("cancelled")
            elif kind == "error":
                raise EvaluationError(msg[1])
    finally:
        recv.close()
        end_process(proc, 5)
