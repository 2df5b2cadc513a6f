"""Keep numba's on-disk cache honest across edits of the shared kernel sources.

numba's cache (cache=True) revalidates a compiled kernel against the timestamp of the file that
defines it, not of the files it calls and inlines (shared/ops.py, */block_ops.py, the lane
searches): after an edit of those, a stale machine code would be loaded silently. So before any
kernel runs, the sources of quantdesk.kernels and all its sub-packages are hashed and, when the
hash differs from the one stored beside the cache, every cache file of the package (*.nbi, *.nbc
in each __pycache__ under kernels/) is removed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

_KERNELS = Path(__file__).resolve().parent.parent     # the quantdesk.kernels package
_done = False


def check() -> None:
    global _done
    if _done:
        return
    _done = True
    cache = _KERNELS / "__pycache__"
    digest = hashlib.sha1()
    for path in sorted(_KERNELS.rglob("*.py")):
        digest.update(path.relative_to(_KERNELS).as_posix().encode() + b"\0" + path.read_bytes())
    stamp = cache / "numba-sources.sha1"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for pattern in ("*.nbi", "*.nbc"):
            for old in _KERNELS.rglob(f"__pycache__/{pattern}"):
                old.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:     # read-only install: numba then caches elsewhere or not at all
        pass
