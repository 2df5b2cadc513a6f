"""Conversations and messages in SQLite (WAL) in the user's data folder.

Durability: every call commits at once. With WAL and synchronous=NORMAL a commit survives the app
being killed (kill -9, crash); only a power cut may lose the last moments. ChatSession saves the
reply as it streams (update_message every few tokens, complete=False), so a kill during
generation loses at most the text since the last partial save of the reply in flight.

The schema is versioned with PRAGMA user_version; a file from a newer Quantdesk is refused
(not rewritten), and a file that is not a database is reported, never replaced. A message's
images are stored with it, once per content (core/chatstore_images.py).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import chatstore_images as images_table
from .chatstore_images import ImageRef

SCHEMA_VERSION = 3  # 2: settings["n_gpu_layers"] is an int, "auto" or "all" (was -1 for auto)
#                     3: the images and message_images tables (chatstore_images.IMAGE_SCHEMA)

SCHEMA = """
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    title         TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    model_path    TEXT,
    settings      TEXT NOT NULL DEFAULT '{}',
    created       REAL NOT NULL,
    updated       REAL NOT NULL
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content         TEXT NOT NULL,
    complete        INTEGER NOT NULL DEFAULT 1,
    created         REAL NOT NULL,
    stats           TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
"""

CONVERSATION_FIELDS = ("title", "system_prompt", "model_path", "settings")


class ChatStoreError(Exception):
    """The chat history file cannot be used. str(e) is one line for the user."""


@dataclass
class Conversation:
    id: int
    title: str
    system_prompt: str
    model_path: str | None
    settings: dict
    created: float
    updated: float


@dataclass
class Message:
    id: int
    conversation_id: int
    role: str
    content: str
    complete: bool
    created: float
    stats: dict = field(default_factory=dict)
    images: tuple[ImageRef, ...] = ()   # in the order they were sent


def _conversation(row) -> Conversation:
    return Conversation(id=row[0], title=row[1], system_prompt=row[2], model_path=row[3],
                        settings=json.loads(row[4] or "{}"), created=row[5], updated=row[6])


def _message(row, images=()) -> Message:
    return Message(id=row[0], conversation_id=row[1], role=row[2], content=row[3],
                   complete=bool(row[4]), created=row[5], stats=json.loads(row[6] or "{}"),
                   images=tuple(images))


class ChatStore:
    def __init__(self, path: Path | None = None, *,
                 max_image_bytes: int = images_table.MAX_IMAGE_BYTES,
                 max_total_image_bytes: int = images_table.MAX_TOTAL_BYTES):
        self.max_image_bytes, self.max_total_image_bytes = max_image_bytes, max_total_image_bytes
        if path is None:
            from quantdesk.core.paths import data_dir
            path = data_dir() / "chats.sqlite3"
        self.path = Path(path)
        self._lock = threading.Lock()   # the app may call from the GUI thread and workers
        self._db = None
        try:
            self._open()
        except BaseException:
            if self._db is not None:
                self._db.close()
                self._db = None
            raise

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit; multi-statement changes use explicit BEGIN.
            self._db = sqlite3.connect(str(self.path), isolation_level=None,
                                       check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._refuse_newer(self._db.execute("PRAGMA user_version").fetchone()[0])
            self._db.execute("PRAGMA journal_mode = WAL")  # writes the header: refuse first
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise ChatStoreError(f"chat history {self.path} cannot be opened ({exc}); "
                                 f"it was left untouched") from None
        except OSError as exc:
            raise ChatStoreError(f"chat history {self.path} cannot be opened "
                                 f"({exc.strerror or exc})") from None

    def _migrate(self) -> None:
        # BEGIN IMMEDIATE and read the version inside: two processes opening a new file at
        # once must not both create the tables.
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(version)
            if version == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                images_table.create_tables(self._db)
            else:
                if version < 2:
                    self._typed_gpu_layers()
                if version < 3:
                    images_table.create_tables(self._db)
            # Later versions: `if version < 4: ...` steps here, in this transaction.
            if version < SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _typed_gpu_layers(self) -> None:
        """Schema 1 stored the window's "auto" GPU layers as -1, which llama.cpp (and now every
        door, core.runtime.gpu_layers) reads as "all layers": say "auto" in words."""
        rows = self._db.execute("SELECT id, settings FROM conversations").fetchall()
        for cid, text in rows:
            try:
                settings = json.loads(text or "{}")
            except ValueError:
                continue  # unreadable settings: left as they are, the defaults apply
            if isinstance(settings, dict) and settings.get("n_gpu_layers") == -1:
                settings["n_gpu_layers"] = "auto"
                self._db.execute("UPDATE conversations SET settings = ? WHERE id = ?",
                                 (json.dumps(settings), cid))

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ChatStoreError(f"chat history {self.path} was written by a newer Quantdesk "
                                 f"(schema {version}); it was left untouched")

    def _transaction(self):
        return _Transaction(self._db)

    def _execute(self, sql: str, args=()) -> sqlite3.Cursor:
        with self._lock:
            if self._db is None:
                raise ChatStoreError("the chat store is closed")
            with _sqlite_errors():
                return self._db.execute(sql, args)

    # -- conversations ---------------------------------------------------------------------------
    def create_conversation(self, title="New chat", system_prompt="", model_path=None,
                            settings=None) -> Conversation:
        now = time.time()
        cur = self._execute(
            "INSERT INTO conversations (title, system_prompt, model_path, settings, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (title, system_prompt, None if model_path is None else str(model_path),
             json.dumps(settings or {}), now, now))
        return self.get_conversation(cur.lastrowid)

    def list_conversations(self) -> list[Conversation]:
        rows = self._execute("SELECT * FROM conversations ORDER BY updated DESC, id DESC").fetchall()
        return [_conversation(r) for r in rows]

    def get_conversation(self, cid) -> Conversation:
        row = self._execute("SELECT * FROM conversations WHERE id = ?", (cid,)).fetchone()
        if row is None:
            raise KeyError(f"no conversation {cid}")
        return _conversation(row)

    def update_conversation(self, cid, **fields) -> None:
        unknown = set(fields) - set(CONVERSATION_FIELDS)
        if unknown:
            raise TypeError(f"unknown conversation fields: {', '.join(sorted(unknown))}")
        if "settings" in fields:
            fields["settings"] = json.dumps(fields["settings"] or {})
        if fields.get("model_path") is not None:
            fields["model_path"] = str(fields["model_path"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._execute(f"UPDATE conversations SET {sets}{', ' if sets else ''}updated = ? WHERE id = ?",
                      (*fields.values(), time.time(), cid))

    def delete_conversation(self, cid) -> None:
        # messages cascade, their image links too, and the trigger drops images left unused
        self._execute("DELETE FROM conversations WHERE id = ?", (cid,))

    # -- messages --------------------------------------------------------------------------------
    def add_message(self, cid, role, content, complete=True, stats=None, images=()) -> Message:
        """images: (name, bytes) pairs or bare bytes, stored with the message in the same
        transaction; one over a cap raises ChatStoreError and nothing is stored."""
        now = time.time()
        images = images_table.normalised(images)
        with self._lock, self._transaction():
            if self._db.execute("SELECT 1 FROM conversations WHERE id = ?", (cid,)).fetchone() is None:
                raise KeyError(f"no conversation {cid}")
            self._check_images(images)
            cur = self._db.execute(
                "INSERT INTO messages (conversation_id, role, content, complete, created, stats)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (cid, role, content, int(bool(complete)), now, json.dumps(stats or {})))
            images_table.attach(self._db, cur.lastrowid, images)
            self._db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, cid))
            row = self._db.execute("SELECT * FROM messages WHERE id = ?", (cur.lastrowid,)).fetchone()
            refs = images_table.refs_by_message(self._db, cid).get(cur.lastrowid, ())
        return _message(row, refs)

    def check_images(self, images) -> None:
        """Raises ChatStoreError (one line) when add_message would refuse these images."""
        with self._lock:
            if self._db is None:
                raise ChatStoreError("the chat store is closed")
            with _sqlite_errors():
                self._check_images(images_table.normalised(images))

    def _check_images(self, images) -> None:
        try:
            images_table.check_caps(self._db, images, self.max_image_bytes,
                                    self.max_total_image_bytes)
        except ValueError as exc:
            raise ChatStoreError(str(exc)) from None

    def image_data(self, sha256: str) -> bytes:
        """The bytes of a stored image (Message.images[i].sha256)."""
        row = self._execute("SELECT data FROM images WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            raise KeyError(f"no image {sha256}")
        return bytes(row[0])

    def update_message(self, mid, content, complete=None, stats=None) -> None:
        sets, args = ["content = ?"], [content]
        if complete is not None:
            sets.append("complete = ?")
            args.append(int(bool(complete)))
        if stats is not None:
            sets.append("stats = ?")
            args.append(json.dumps(stats))
        self._execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", (*args, mid))

    def delete_messages_from(self, cid, mid) -> None:
        """Delete message `mid` and every later one in the conversation (regenerate, edit)."""
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM messages WHERE conversation_id = ? AND id >= ?", (cid, mid))
            self._db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), cid))

    def messages(self, cid) -> list[Message]:
        with self._lock:
            if self._db is None:
                raise ChatStoreError("the chat store is closed")
            with _sqlite_errors():
                rows = self._db.execute("SELECT * FROM messages WHERE conversation_id = ?"
                                        " ORDER BY id", (cid,)).fetchall()
                images = images_table.refs_by_message(self._db, cid)
        return [_message(r, images.get(r[0], ())) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> "ChatStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.owner = not self.db.in_transaction
        if self.owner:
            with _sqlite_errors():
                self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, _tb):
        with _sqlite_errors():
            if self.owner:
                self.db.execute("ROLLBACK" if exc_type else "COMMIT")
            if isinstance(exc, sqlite3.Error):
                raise exc
        return False


@contextmanager
def _sqlite_errors():
    """SQLite failures after opening (locked by another process, disk full) become one line."""
    try:
        yield
    except sqlite3.Error as exc:
        raise ChatStoreError(f"the chat history could not be saved or read ({exc})") from None
