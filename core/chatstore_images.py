"""Images of chat messages in the chat store (schema 3): the tables and the queries.

An image is stored once by its content (sha256 of its bytes): the same picture sent twice, in one
chat or in two, is one row in `images`; `message_images` links a message to its images in order,
with the name the person saw (the file's name, or "image N"). Deleting a message (regenerate, edit,
a deleted conversation: ON DELETE CASCADE) deletes its links, and the trigger deletes an image no
message uses any more, so no image outlives its last message.

Two caps, both checked before anything is written, each refused in one line: one image
(MAX_IMAGE_BYTES, the engine's own limit) and all the images of the history together
(MAX_TOTAL_BYTES: the file stays a size a person can back up).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from quantdesk.core.engine.images import MAX_IMAGE_BYTES

MAX_TOTAL_BYTES = 2 << 30

# Separate statements (a trigger's body has its own ';'), run inside the caller's transaction.
IMAGE_SCHEMA = (
    """CREATE TABLE images (
        sha256 TEXT PRIMARY KEY,
        data   BLOB NOT NULL,
        size   INTEGER NOT NULL
    )""",
    """CREATE TABLE message_images (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        sha256     TEXT NOT NULL REFERENCES images(sha256),
        name       TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (message_id, position)
    )""",
    "CREATE INDEX message_images_by_image ON message_images(sha256)",
    """CREATE TRIGGER image_unused AFTER DELETE ON message_images
       WHEN NOT EXISTS (SELECT 1 FROM message_images WHERE sha256 = OLD.sha256)
       BEGIN DELETE FROM images WHERE sha256 = OLD.sha256; END""",
)


@dataclass(frozen=True)
class ImageRef:
    """One image of a message, without its bytes (ChatStore.image_data reads those)."""
    name: str
    sha256: str
    size: int


def create_tables(db) -> None:
    for statement in IMAGE_SCHEMA:
        db.execute(statement)


def normalised(images) -> list[tuple[str, bytes]]:
    """(name, bytes) pairs from (name, bytes) pairs or bare bytes (named "image N")."""
    out = []
    for i, image in enumerate(images or (), 1):
        name, data = image if isinstance(image, tuple) else (f"image {i}", image)
        out.append((str(name) or f"image {i}", bytes(data)))
    return out


def check_caps(db, images: list[tuple[str, bytes]], max_image: int, max_total: int) -> None:
    """Raises ValueError (one line) when an image, or the history's images with these, is too
    large. Bytes already stored (the same image again) do not count twice."""
    for name, data in images:
        if len(data) > max_image:
            raise ValueError(f"{name} is larger than {_mb(max_image)}: it was not saved")
    new = {hashlib.sha256(d).hexdigest(): len(d) for _, d in images}
    stored = {row[0] for row in db.execute(
        f"SELECT sha256 FROM images WHERE sha256 IN ({', '.join('?' * len(new))})", tuple(new))
    } if new else set()
    adding = sum(size for h, size in new.items() if h not in stored)
    if adding:
        total = db.execute("SELECT COALESCE(SUM(size), 0) FROM images").fetchone()[0]
        if total + adding > max_total:
            raise ValueError(f"the chat history holds {_mb(total)} of images and the limit is "
                             f"{_mb(max_total)}: delete chats with images to attach more")


def attach(db, mid: int, images: list[tuple[str, bytes]]) -> None:
    for position, (name, data) in enumerate(images):
        digest = hashlib.sha256(data).hexdigest()
        db.execute("INSERT OR IGNORE INTO images (sha256, data, size) VALUES (?, ?, ?)",
                   (digest, data, len(data)))
        db.execute("INSERT INTO message_images (message_id, position, sha256, name)"
                   " VALUES (?, ?, ?, ?)", (mid, position, digest, name))


def refs_by_message(db, cid: int) -> dict[int, tuple[ImageRef, ...]]:
    rows = db.execute(
        "SELECT l.message_id, l.name, l.sha256, i.size FROM message_images l"
        " JOIN images i ON i.sha256 = l.sha256 JOIN messages m ON m.id = l.message_id"
        " WHERE m.conversation_id = ? ORDER BY l.message_id, l.position", (cid,)).fetchall()
    out: dict[int, list[ImageRef]] = {}
    for mid, name, digest, size in rows:
        out.setdefault(mid, []).append(ImageRef(name, digest, size))
    return {mid: tuple(refs) for mid, refs in out.items()}


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.0f} MB" if n >= 1 << 20 else f"{n} bytes"
