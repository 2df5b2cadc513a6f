"""What a drag onto the window or a page carries that we can open."""
from __future__ import annotations


def local_files(mime) -> list[str]:
    """Local file paths carried by a drag (remote URLs are not ours to fetch)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]
