"""A message's images in the chat store (schema 3): stored once per content, capped, deleted with
their last message, and a schema-2 file (the previous Quantdesk) migrates keeping every chat."""
from __future__ import annotations

import json
import sqlite3

import pytest

from quantdesk.core.chatstore import SCHEMA_VERSION, ChatStore, ChatStoreError

CAT, DOG = b"\x89PNG cat" * 100, b"\x89PNG dog" * 50


def table_rows(path, table) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def test_images_are_stored_with_the_message_once_per_content(tmp_path):
    path = tmp_path / "chats.sqlite3"
    with ChatStore(path) as store:
        one, two = store.create_conversation().id, store.create_conversation().id
        m1 = store.add_message(one, "user", "look", images=[("cat.png", CAT), ("dog.png", DOG)])
        store.add_message(one, "user", "again", images=[("cat again.png", CAT)])
        store.add_message(two, "user", "elsewhere", images=[CAT])   # bare bytes: "image 1"
        assert [r.name for r in m1.images] == ["cat.png", "dog.png"]
    assert table_rows(path, "images") == 2          # the cat is stored once for three messages
    with ChatStore(path) as store:                  # and comes back after a reopen, in order
        first, second = store.messages(one)
        assert [(r.name, r.size) for r in first.images] == [("cat.png", len(CAT)),
                                                             ("dog.png", len(DOG))]
        assert [store.image_data(r.sha256) for r in first.images] == [CAT, DOG]
        assert [r.name for r in second.images] == ["cat again.png"]
        assert [r.name for r in store.messages(two)[0].images] == ["image 1"]


def test_deleting_messages_or_a_conversation_leaves_no_orphan_image(tmp_path):
    path = tmp_path / "chats.sqlite3"
    with ChatStore(path) as store:
        keep, gone = store.create_conversation().id, store.create_conversation().id
        store.add_message(keep, "user", "kept", images=[("cat.png", CAT)])
        m = store.add_message(gone, "user", "shared", images=[("cat.png", CAT)])
        store.add_message(gone, "user", "own", images=[("dog.png", DOG)])
        store.delete_messages_from(gone, m.id + 1)       # the dog's only message
        assert table_rows(path, "images") == 1
        store.delete_conversation(gone)                  # the cat is still used by `keep`
        assert [store.image_data(r.sha256) for r in store.messages(keep)[0].images] == [CAT]
        store.delete_conversation(keep)
    assert table_rows(path, "images") == table_rows(path, "message_images") == 0


def test_the_caps_refuse_in_one_line_and_store_nothing(tmp_path):
    path = tmp_path / "chats.sqlite3"
    with ChatStore(path, max_image_bytes=len(CAT), max_total_image_bytes=len(CAT) + 10) as store:
        cid = store.create_conversation().id
        with pytest.raises(ChatStoreError) as big:
            store.add_message(cid, "user", "big", images=[("huge.png", CAT + b"x")])
        assert str(big.value) == f"huge.png is larger than {len(CAT)} bytes: it was not saved"
        store.add_message(cid, "user", "fits", images=[("cat.png", CAT)])
        store.add_message(cid, "user", "same bytes cost nothing", images=[("cat.png", CAT)])
        with pytest.raises(ChatStoreError) as full:
            store.check_images([("dog.png", DOG)])
        assert "\n" not in str(full.value)
        assert str(full.value).endswith(": delete chats with images to attach more")
        with pytest.raises(ChatStoreError):
            store.add_message(cid, "user", "full", images=[("dog.png", DOG)])
        assert [m.content for m in store.messages(cid)] == ["fits", "same bytes cost nothing"]
    assert table_rows(path, "images") == 1


# Schema 2 exactly as Quantdesk wrote it before images were stored (frozen here on purpose:
# core.chatstore.SCHEMA moves on, the files people have do not).
SCHEMA_2 = """
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
PRAGMA user_version = 2;
PRAGMA journal_mode = WAL;
"""


def test_a_schema_2_file_migrates_and_keeps_every_chat(tmp_path):
    path = tmp_path / "chats.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_2)
    db.execute("INSERT INTO conversations (title, model_path, settings, created, updated)"
               " VALUES ('Old chat', '/m.gguf', ?, 1, 2)", (json.dumps({"n_gpu_layers": "auto"}),))
    rows = [("user", "hello", 1, "{}"), ("assistant", "hi there", 1, '{"tokens_per_second": 9.5}'),
            ("user", "still there?", 1, "{}"), ("assistant", "half a rep", 0, "{}")]
    db.executemany("INSERT INTO messages (conversation_id, role, content, complete, created,"
                   " stats) VALUES (1, ?, ?, ?, 3, ?)", rows)
    db.commit()
    db.close()

    with ChatStore(path) as store:
        conv, = store.list_conversations()
        assert (conv.title, conv.model_path, conv.settings) == (
            "Old chat", "/m.gguf", {"n_gpu_layers": "auto"})
        kept = store.messages(conv.id)
        assert [(m.role, m.content, m.complete, m.stats, m.images) for m in kept] == [
            ("user", "hello", True, {}, ()), ("assistant", "hi there", True,
                                              {"tokens_per_second": 9.5}, ()),
            ("user", "still there?", True, {}, ()), ("assistant", "half a rep", False, {}, ())]
        new = store.add_message(conv.id, "user", "now with a picture", images=[("cat.png", CAT)])
        assert store.image_data(new.images[0].sha256) == CAT
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()
    with ChatStore(path) as store:                    # opening a migrated file again: no change
        assert len(store.messages(1)) == 5
