"""Rendering a model's Jinja chat template, with limits on time, memory and size.

The template is code from the model file. It renders in template_sandbox's BoundedEnvironment,
where no single operation can build a value over MAX_CHARS; what is left is work that grows step
by step (nested loops, a macro that calls itself, a list built in a loop). A watchdog thread
stops that: past RENDER_SECONDS, or once this process has grown by RENDER_MEMORY_BYTES while
rendering, it raises an exception in the rendering thread (PyThreadState_SetAsyncExc), which
Python delivers between two bytecodes, so the template's loop really ends. The prompt as a whole
is counted as it is produced and stopped at MAX_CHARS.

Every failure is a TemplateError (a ValueError) whose one-line message says that the model's
chat template is at fault: invalid Jinja, refused the conversation, too slow, too big, or empty.
"""
from __future__ import annotations

import ctypes
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache

from .template_sandbox import MAX_CHARS, BoundedEnvironment, TooBig

RENDER_SECONDS = 2.0
RENDER_MEMORY_BYTES = 256 << 20
_POLL_SECONDS = 0.01


class TemplateError(ValueError):
    """The model's chat template cannot make a prompt. str(e) is one line for the user."""


class _Stopped(BaseException):
    """Raised in the rendering thread by the watchdog. Not an Exception: the template's runtime
    must not catch it."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _rss() -> int:
    import psutil
    return psutil.Process().memory_info().rss


@contextmanager
def _watchdog(seconds: float, memory_bytes: int):
    """Stop the calling thread's Python code after `seconds`, or when the process has grown by
    `memory_bytes`; the with-block then raises TemplateError."""
    thread_id = threading.get_ident()
    lock = threading.Lock()
    done = threading.Event()
    reason: list[str] = []
    baseline = _rss()

    def watch() -> None:
        deadline = time.monotonic() + seconds
        while not done.wait(_POLL_SECONDS):
            if time.monotonic() > deadline:
                why = f"took longer than {seconds:g} s to render"
            elif _rss() - baseline > memory_bytes:
                why = f"used more than {memory_bytes >> 20} MB of memory while rendering"
            else:
                continue
            with lock:
                if not done.is_set():
                    reason.append(why)
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                               ctypes.py_object(_Stopped))
            return

    watcher = threading.Thread(target=watch, name="chat-template-watchdog", daemon=True)
    watcher.start()
    try:
        try:
            yield
        finally:
            with lock:
                done.set()
                if reason:   # raised but not delivered yet: take it back, the work is over
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
    except _Stopped:
        raise TemplateError(f"the model's chat template {reason[0]}; it was stopped "
                            f"(the template in the model file is faulty)") from None


def _raise_exception(message) -> None:
    raise ValueError(message)   # templates call raise_exception('roles must alternate ...')


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=4)
def _compiled(template: str):
    # Compiling takes milliseconds; a chat renders the same template every turn.
    return BoundedEnvironment().from_string(template)


_OWN_VARIABLES = {"messages", "bos_token", "eos_token", "add_generation_prompt", "raise_exception",
                  "strftime_now", "tools", "functions", "tool_choice", "function_call"}


def render_chat_template(template: str, messages: list[dict], *, bos_token: str,
                         eos_token: str, add_generation_prompt: bool = True,
                         tools: list[dict] | None = None, variables: dict | None = None) -> str:
    """The prompt text `template` makes of `messages` (Hugging Face's chat-template variables;
    `tools`: OpenAI-style {"type": "function", "function": {...}} specs, which a template that
    knows tools writes in its own words; `variables`: more of them, as llama.cpp's
    chat_template_kwargs, e.g. enable_thinking, never replacing the ones above). Raises
    TemplateError."""
    extra = {k: v for k, v in (variables or {}).items() if k not in _OWN_VARIABLES}
    from jinja2 import TemplateSyntaxError
    failure = None     # raised after the except blocks, so no traceback keeps the work alive
    try:
        with _watchdog(RENDER_SECONDS, RENDER_MEMORY_BYTES):
            compiled = _compiled(template)
            pieces: list[str] = []
            size = 0
            for piece in compiled.generate(
                    messages=messages, bos_token=bos_token, eos_token=eos_token,
                    add_generation_prompt=add_generation_prompt, raise_exception=_raise_exception,
                    strftime_now=_strftime_now, tools=tools or None, functions=None, tool_choice=None,
                    function_call=None, **extra):
                size += len(piece)
                if size > MAX_CHARS:
                    raise TooBig(f"a prompt of more than {MAX_CHARS:,} characters")
                pieces.append(piece)
    except TooBig as exc:
        failure = (f"the model's chat template tried to make {exc}; it was stopped "
                   f"(the template in the model file is faulty)")
    except TemplateSyntaxError as exc:
        failure = (f"the model's chat template is not valid Jinja "
                   f"(line {exc.lineno}: {_one_line(exc.message or exc)})")
    except TemplateError as exc:
        failure = str(exc)
    except (Exception, RecursionError) as exc:  # a template may refuse a conversation
        failure = f"the model's chat template rejected this conversation: {_one_line(exc)}"
    if failure is not None:
        raise TemplateError(failure)
    text = "".join(pieces)
    if not text:
        raise TemplateError("the model's chat template made an empty prompt of this "
                            "conversation (the template in the model file is faulty)")
    return text
