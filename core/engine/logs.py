"""Log files of the child processes that run llama.cpp (inference host, evaluation jobs).

llama.cpp writes from C straight to file descriptors 1 and 2; the children point both at a log
file in the user data folder so the terminal stays clean and a crash leaves its last words.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

LOG_LIMIT = 4 * 1024 * 1024   # past this the log is rotated to NAME.1 at the next start


def log_path(name: str = "engine-host.log") -> Path:
    from quantdesk.core.paths import data_dir
    folder = data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def route_output_to(path: str | None, who: str) -> None:
    """In the child: send fds 1 and 2 to `path` (rotated when large), or to nowhere."""
    try:
        if path and os.path.exists(path) and os.path.getsize(path) > LOG_LIMIT:
            os.replace(path, path + ".1")
        fd = os.open(path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    print(f"--- {who} {os.getpid()} started {time.strftime('%Y-%m-%d %H:%M:%S')}",
          file=sys.stderr, flush=True)
