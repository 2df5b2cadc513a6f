"""Keep numba's on-disk cache honest across edits of the shared kernel sources.

numba's cache (cache=True) revalidates a compiled kernel against the timestamp of the file that
defines it, not of the files it calls and inlines (ops.py, *_ops.py, qx_lanes.py): after an
edit of those, a stale machine code would be loaded silently. So before any kernel runs, the
sources of this package are hashed and, when the hash differs from the one stored beside the
cache, the package's cache files (*.nbi, *.nbc in kernels/__pycache__) are removed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_done = False


def check() -> None:
    global _done
    if _done:
        return
    _done = True
    cache = _HERE / "__pycache__"
    digest = hashlib.sha1()
    for path in sorted(_HERE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    stamp = cache / "numba-sources.sha1"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for pattern in ("*.nbi", "*.nbc"):
            for old in cache.glob(pattern):
                old.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:     # read-only install: numba then caches elsewhere or not at all
        pass
