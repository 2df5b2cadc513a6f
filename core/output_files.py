"""Files Quantdesk writes (quantized or converted models, importance matrices): the target
checked before any work, NAME.part while writing, renamed only when complete.

    output_problem(out, overwrite=)  -> None, or one line saying why `out` cannot be written
    with PartFile(out) as part:      -> writes go to `part` (NAME.part); part_file.commit() renames
        ...                             it to `out`; leaving the block any other way removes it
    clean_stale_parts(data_dir=None) -> the .part files of writers that are gone, now removed

Why the journal: a writer killed with SIGKILL (or by a power cut) cannot remove its .part, and a
.part can be anywhere the user chose to write. So before creating NAME.part a writer records its
path in data_dir()/writing/ (one small file per write) and holds an exclusive lock on that record
for as long as it writes; the kernel drops the lock when the process dies, however it dies. At the
next start `clean_stale_parts` removes each recorded .part whose record it can lock, i.e. whose
writer is gone, and never one that another live Quantdesk process is writing. Files not in the
journal (huggingface_hub's own resumable `.incomplete` downloads, anyone else's .part) are never
touched.
"""
from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

from quantdesk.core.text import shown

PART_SUFFIX = ".part"
JOURNAL = "writing"


class PartBusy(Exception):
    """Another live process is writing the same NAME.part."""


def part_path(out: Path) -> Path:
    return out.with_name(out.name + PART_SUFFIX)


def output_problem(out: str | Path, *, overwrite: bool) -> str | None:
    """Why `out` cannot be the file we write (one line for the user), or None."""
    out = Path(out)
    name_max = _name_max(out.parent)
    length = len(os.fsencode(out.name)) + len(PART_SUFFIX)
    if length > name_max:
        return (f"the output file name is too long ({len(out.name)} characters; this file system "
                f"allows {name_max - len(PART_SUFFIX)} bytes, keeping room for {PART_SUFFIX} while writing)")
    try:
        st = os.stat(out)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return f"cannot write {shown(str(out), 200)}: {exc.strerror or exc}"
    if st is not None:
        import stat
        if stat.S_ISDIR(st.st_mode):
            return f"{shown(str(out), 200)} is a folder; give the name of the file to write in it"
        if not overwrite:
            return f"{shown(str(out), 200)} already exists (choose another name or allow overwriting)"
        if not stat.S_ISREG(st.st_mode):
            return f"{shown(str(out), 200)} is not a regular file; not replacing it"
    if not out.parent.is_dir():
        return f"output folder {shown(str(out.parent), 200)} does not exist"
    if not os.access(out.parent, os.W_OK):
        return f"cannot write to {shown(str(out.parent), 200)}: permission denied"
    return None


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):   # Windows has no pathconf: NTFS allows 255
        return 255


# ---- the journal -------------------------------------------------------------------------------

def _journal(data_dir: Path | None) -> Path:
    if data_dir is None:
        from quantdesk.core.paths import data_dir as default
        data_dir = default()
    folder = Path(data_dir) / JOURNAL
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _try_lock(fd: int) -> bool:
    """An exclusive lock on the open record, without waiting; False when someone holds it."""
    if os.name == "nt":
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def _same_file(fd: int, path: Path) -> bool:
    """The record we locked is still the one at `path` (not unlinked or replaced meanwhile)."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _drop(fd: int, record: Path) -> None:
    """Remove a record we hold locked, then let go of it (Windows cannot unlink an open file)."""
    if os.name == "nt":
        os.close(fd)
        record.unlink(missing_ok=True)
        return
    record.unlink(missing_ok=True)
    os.close(fd)


class PartFile:
    """NAME.part for `out`, recorded in the journal and locked while this process writes it."""

    def __init__(self, out: str | Path, *, data_dir: Path | None = None):
        self.out = Path(os.path.abspath(out))
        self.path = part_path(self.out)
        self._data_dir = data_dir
        self._fd: int | None = None
        self._record: Path | None = None
        self.committed = False

    def __enter__(self) -> PartFile:
        clean_stale_parts(self._data_dir)   # a start of ours: what dead writers left goes first
        try:
            self._fd, self._record = self._hold_record()
        except OSError:
            pass   # no journal (a read-only data folder): write anyway, as before there was one
        return self

    def _hold_record(self) -> tuple[int, Path]:
        key = hashlib.sha256(os.fsencode(self.path)).hexdigest()[:32]
        record = _journal(self._data_dir) / f"{key}.lock"
        # Retried briefly: a cleaner holds a dead writer's record for a moment, and may unlink
        # it between our open and our lock (then the record we hold is not the one named).
        for _ in range(20):
            fd = os.open(record, os.O_RDWR | os.O_CREAT, 0o644)
            if _try_lock(fd) and _same_file(fd, record):
                break
            os.close(fd)
            time.sleep(0.05)
        else:
            raise PartBusy(f"another Quantdesk process is writing {shown(self.path.name)}")
        try:
            os.ftruncate(fd, 0)
            os.write(fd, os.fsencode(self.path) + b"\n" + str(os.getpid()).encode() + b"\n")
        except OSError:
            _drop(fd, record)
            raise
        return fd, record

    def commit(self) -> None:
        """The .part is complete and verified: it becomes `out` (atomically)."""
        os.replace(self.path, self.out)
        self.committed = True

    def __exit__(self, *exc) -> None:
        try:
            if not self.committed:
                self.path.unlink(missing_ok=True)
        finally:
            if self._fd is not None:
                _drop(self._fd, self._record)
                self._fd = None


def clean_stale_parts(data_dir: Path | None = None) -> list[Path]:
    """Remove the .part files recorded by writers that are gone; returns what was removed.
    A record whose lock is held belongs to a live writer (this or another process): left alone."""
    try:
        records = sorted(_journal(data_dir).glob("*.lock"))
    except OSError:
        return []
    removed = []
    for record in records:
        try:
            fd = os.open(record, os.O_RDWR)
        except OSError:
            continue
        try:
            if not _try_lock(fd) or not _same_file(fd, record):
                os.close(fd)
                continue
            content = os.read(fd, 1 << 16).split(b"\n")[0]
        except OSError:
            os.close(fd)
            continue
        part = Path(os.fsdecode(content)) if content else None
        if part is not None and part.name.endswith(PART_SUFFIX) and part.is_file() and not part.is_symlink():
            try:
                part.unlink()
                removed.append(part)
            except OSError:
                pass   # read-only folder, or already gone: the record goes anyway
        _drop(fd, record)
    return removed
