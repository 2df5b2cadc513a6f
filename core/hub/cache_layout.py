"""The huggingface_hub cache layout, written the way huggingface_hub writes it.

    models--org--name/blobs/<etag>                   the file (etag = LFS sha256 for LFS files)
    models--org--name/blobs/<etag>.incomplete        our partial file, resumed with `Range`
    models--org--name/snapshots/<commit>/<filename>  symlink -> ../../blobs/<etag>
    models--org--name/refs/<revision>                the commit the revision pointed at
    .locks/models--org--name/<etag>.lock             one downloader per blob

Every name in these paths but the cache itself comes from outside: the commit and ETag from the
server's HEAD answer, the file name from its file listing, repo id and revision from the user.
A hostile or broken HF_ENDPOINT could send `../../x` for any of them, so a `Target` checks them all
when it is made (this is the one place): each must be one of the hub's own forms, and every path
built from them must resolve inside the cache, before anything is written.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from quantdesk.core.hub.connection import cache_dir as default_cache_dir
from quantdesk.core.hub.errors import UnsafeServerDataError
from quantdesk.core.text import quoted

# huggingface_hub's REGEX_COMMIT_HASH (file_download.py): a full lowercase git sha1.
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
# The ETag after huggingface_hub's _normalize_etag (W/ prefix and quotes gone): the LFS sha256
# (64 hex) or the git blob sha1 (40 hex) on the hub; a mirror or CDN in front of HF_ENDPOINT may
# send an md5 (32 hex), with "-N" after a multipart upload. Nothing else becomes a file name.
ETAG_RE = re.compile(r"[0-9a-fA-F]{32,128}(?:-[0-9]{1,6})?")
# huggingface_hub's validate_repo_id rules: "name" or "namespace/name", [A-Za-z0-9_.-], no "--"/"..".
REPO_ID_RE = re.compile(r"(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b", re.ASCII)
MAX_NAME_BYTES = 255      # one path segment, the common file-system limit


def storage_folder(repo_id: str, cache: Path | None = None) -> Path:
    return Path(cache or default_cache_dir()) / ("models--" + repo_id.replace("/", "--"))


def relative_name_problem(name) -> str | None:
    """Why `name` (a repo file name or a revision) cannot be a path under a cache folder, or None.

    Mirrors huggingface_hub's _validate_relative_filename (no `..`, nothing absolute, no drive or
    UNC part under POSIX or Windows rules) and is stricter: no backslash, no control character,
    no empty or `.` segment, no segment longer than a file system takes.
    """
    if not isinstance(name, str) or not name:
        return "an empty name"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "a control character"
    if "\\" in name:
        return "a backslash"
    if PurePosixPath(name).root:
        return "an absolute path"
    for part in name.split("/"):
        if part in ("", ".", ".."):
            return f"a {part!r} path segment" if part else "an empty path segment"
        windows = PureWindowsPath(part)
        if windows.drive or windows.root or ":" in part:
            return "a drive letter or stream name"
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            return "a path segment over 255 bytes"
    return None


def check_request(repo_id: str, filename: str, revision: str) -> None:
    """The names known before any request: the repo id and revision (user) and file name (listing)."""
    what = f"refusing to download {quoted(filename)} from {quoted(repo_id)}"
    if not isinstance(repo_id, str) or not REPO_ID_RE.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id:
        raise UnsafeServerDataError(f"{what}: {quoted(repo_id)} is not a hub repo id")
    problem = relative_name_problem(filename)
    if problem:
        raise UnsafeServerDataError(f"{what}: the file name has {problem}; nothing was written")
    problem = relative_name_problem(revision)
    if problem:
        raise UnsafeServerDataError(f"{what}: the revision has {problem}; nothing was written")


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, with `..` and symlinks resolved, lies under `root` (also resolved)."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    return real != real_root and real_root in real.parents


@dataclass
class Target:
    """Where one hub file goes in the cache, from the HEAD metadata. Checked when made."""
    repo_id: str
    filename: str
    revision: str
    commit: str
    etag: str
    size: int | None
    url: str
    storage: Path

    def __post_init__(self):
        check_request(self.repo_id, self.filename, self.revision)
        what = f"refusing to download {quoted(self.filename)} from {self.repo_id}"
        if not isinstance(self.commit, str) or not COMMIT_RE.fullmatch(self.commit):
            raise UnsafeServerDataError(f"{what}: the server sent X-Repo-Commit {quoted(self.commit)}, "
                                        "not a 40-digit commit hash; nothing was written")
        if not isinstance(self.etag, str) or not ETAG_RE.fullmatch(self.etag):
            raise UnsafeServerDataError(f"{what}: the server sent ETag {quoted(self.etag)}, "
                                        "not a hub file hash; nothing was written")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 0):
            raise UnsafeServerDataError(f"{what}: the server sent size {quoted(self.size)}; nothing was written")
        for path in (self.storage, self.blob, self.partial, self.pointer, self.lock, self.ref):
            if not inside(self.cache, path):
                raise UnsafeServerDataError(f"{what}: {quoted(str(path))} lies outside the cache "
                                            f"{quoted(str(self.cache))}; nothing was written")

    @property
    def cache(self) -> Path:
        return self.storage.parent

    @property
    def blob(self) -> Path:
        return self.storage / "blobs" / self.etag

    @property
    def partial(self) -> Path:
        return self.storage / "blobs" / (self.etag + ".incomplete")

    @property
    def pointer(self) -> Path:
        return self.storage / "snapshots" / self.commit / Path(*self.filename.split("/"))

    @property
    def lock(self) -> Path:
        return self.cache / ".locks" / self.storage.name / f"{self.etag}.lock"

    @property
    def ref(self) -> Path:
        return self.storage / "refs" / Path(*self.revision.split("/"))


def partial_path(repo_id: str, etag: str | None, cache: Path | None = None) -> Path | None:
    """Our partial file for a remembered ETag (from downloads.json), or None when it is not a safe one."""
    if not isinstance(etag, str) or not ETAG_RE.fullmatch(etag):
        return None
    storage = storage_folder(repo_id, cache)
    path = storage / "blobs" / (etag + ".incomplete")
    return path if inside(storage.parent, path) else None


def partial_bytes(target: Target) -> int:
    try:
        return target.partial.stat().st_size
    except FileNotFoundError:
        return 0


def publish(target: Target) -> Path:
    """Move the verified part into place and link the snapshot, as huggingface_hub does."""
    os.replace(target.partial, target.blob)
    os.chmod(target.blob, 0o644)
    link_snapshot(target)
    return target.pointer


def link_snapshot(target: Target) -> None:
    target.pointer.parent.mkdir(parents=True, exist_ok=True)
    try:  # huggingface_hub's own helper: relative symlink, copy where symlinks are unavailable
        from huggingface_hub.file_download import _create_symlink
        _create_symlink(str(target.blob), str(target.pointer), new_blob=False)
    except ImportError:
        if target.pointer.is_symlink() or target.pointer.exists():
            target.pointer.unlink()
        os.symlink(os.path.relpath(target.blob, target.pointer.parent), target.pointer)
    if target.revision != target.commit:
        ref = target.ref
        ref.parent.mkdir(parents=True, exist_ok=True)
        tmp = ref.with_name(f"{ref.name}.{os.getpid()}.tmp")   # readers never see half a ref
        tmp.write_text(target.commit)
        os.replace(tmp, ref)
