"""The huggingface_hub cache layout, written the way huggingface_hub writes it.

    models--org--name/blobs/<etag>                   the file (etag = LFS sha256 for LFS files)
    models--org--name/blobs/<etag>.incomplete        our partial file, resumed with `Range`
    models--org--name/snapshots/<commit>/<filename>  symlink -> ../../blobs/<etag>
    models--org--name/refs/<revision>                the commit the revision pointed at
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from quantdesk.core.hub.connection import cache_dir as default_cache_dir


def storage_folder(repo_id: str, cache: Path | None = None) -> Path:
    return Path(cache or default_cache_dir()) / ("models--" + repo_id.replace("/", "--"))


@dataclass
class Target:
    """Where one hub file goes in the cache, from the HEAD metadata."""
    repo_id: str
    filename: str
    revision: str
    commit: str
    etag: str
    size: int | None
    url: str
    storage: Path

    @property
    def blob(self) -> Path:
        return self.storage / "blobs" / self.etag

    @property
    def partial(self) -> Path:
        return self.storage / "blobs" / (self.etag + ".incomplete")

    @property
    def pointer(self) -> Path:
        return self.storage / "snapshots" / self.commit / Path(*self.filename.split("/"))


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
        ref = target.storage / "refs" / target.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        tmp = ref.with_name(f"{ref.name}.{os.getpid()}.tmp")   # readers never see half a ref
        tmp.write_text(target.commit)
        os.replace(tmp, ref)
