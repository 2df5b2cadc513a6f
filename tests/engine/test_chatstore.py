"""Chat history in SQLite: survives restarts and a kill -9 mid-reply, regenerate semantics."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from quantdesk.core.chatstore import SCHEMA_VERSION, ChatStore, ChatStoreError


def test_conversations_and_messages_survive_reopen(tmp_path):
    path = tmp_path / "chats.sqlite3"
    store = ChatStore(path)
    first = store.create_conversation("Capitals", system_prompt="Be brief.",
                                      model_path="/models/smol.gguf", settings={"temperature": 0.2})
    second = store.create_conversation()
    u = store.add_message(first.id, "user", "What is the capital of France?")
    a = store.add_message(first.id, "assistant", "Paris.", stats={"tokens_per_second": 41.5})
    store.update_conversation(second.id, title="Renamed", settings={"n_ctx": 4096})
    store.close()

    store = ChatStore(path)
    conversations = store.list_conversations()
    assert [c.title for c in conversations] == ["Renamed", "Capitals"]   # most recent first
    again = store.get_conversation(first.id)
    assert (again.system_prompt, again.model_path, again.settings) == (
        "Be brief.", "/models/smol.gguf", {"temperature": 0.2})
    assert store.get_conversation(second.id).settings == {"n_ctx": 4096}
    messages = store.messages(first.id)
    assert [(m.id, m.role, m.content, m.complete) for m in messages] == [
        (u.id, "user", "What is the capital of France?", True), (a.id, "assistant", "Paris.", True)]
    assert messages[1].stats == {"tokens_per_second": 41.5}
    store.close()


def test_file_is_wal_and_versioned(tmp_path):
    path = tmp_path / "chats.sqlite3"
    ChatStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_delete_messages_from_keeps_earlier_ones_and_other_chats(tmp_path):
    store = ChatStore(tmp_path / "chats.sqlite3")
    cid = store.create_conversation().id
    other = store.create_conversation().id
    kept = store.add_message(other, "user", "untouched")
    u1 = store.add_message(cid, "user", "one")
    a1 = store.add_message(cid, "assistant", "reply one")
    u2 = store.add_message(cid, "user", "two")
    a2 = store.add_message(cid, "assistant", "reply two")

    store.delete_messages_from(cid, a2.id)          # regenerate the last reply
    assert [m.id for m in store.messages(cid)] == [u1.id, a1.id, u2.id]
    store.delete_messages_from(cid, u2.id)          # edit-and-resend the last user message
    assert [m.id for m in store.messages(cid)] == [u1.id, a1.id]
    new = store.add_message(cid, "user", "two, edited")
    assert new.id > a2.id                           # ids never reused: order stays by id
    assert [m.id for m in store.messages(other)] == [kept.id]

    store.delete_conversation(cid)
    assert store.messages(cid) == []
    with pytest.raises(KeyError):
        store.get_conversation(cid)
    with pytest.raises(KeyError):
        store.add_message(cid, "user", "into a deleted chat")
    store.close()


CRASHING_WRITER = textwrap.dedent("""
    import sys, time
    from quantdesk.core.chatstore import ChatStore
    store = ChatStore(sys.argv[1])
    cid = store.create_conversation("crash").id
    store.add_message(cid, "user", "Tell me a story.")
    reply = store.add_message(cid, "assistant", "", complete=False)
    text = ""
    for word in ["Once", " upon", " a", " time"]:
        text += word
        store.update_message(reply.id, text)
    print("saved", flush=True)
    time.sleep(60)   # generating on; the test kills us here
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_partial_reply_survives_kill_9(tmp_path):
    path = tmp_path / "chats.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "saved"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()

    store = ChatStore(path)
    (conversation,) = store.list_conversations()
    user, reply = store.messages(conversation.id)
    assert (user.content, user.complete) == ("Tell me a story.", True)
    assert (reply.role, reply.content, reply.complete) == ("assistant", "Once upon a time", False)
    store.update_message(reply.id, "Once upon a time, the end.", complete=True, stats={"n": 7})
    (user, reply) = store.messages(conversation.id)
    assert (reply.complete, reply.stats) == (True, {"n": 7})
    store.close()


def test_unusable_files_are_reported_and_left_untouched(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ChatStoreError) as info:
        ChatStore(junk)
    assert "\n" not in str(info.value)
    assert junk.read_bytes() == b"this is not a database" * 100

    newer = tmp_path / "newer.sqlite3"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = newer.read_bytes()
    with pytest.raises(ChatStoreError, match="newer Quantdesk"):
        ChatStore(newer)
    assert newer.read_bytes() == before


def test_in_memory_store_for_an_unusable_history(tmp_path, monkeypatch):
    # The chat page falls back to ":memory:" when the history file is unusable.
    from pathlib import Path
    monkeypatch.chdir(tmp_path)
    store = ChatStore(Path(":memory:"))
    cid = store.create_conversation("session only").id
    store.add_message(cid, "user", "hi")
    assert [m.content for m in store.messages(cid)] == ["hi"]
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_a_locked_database_is_a_one_line_error_not_a_crash(tmp_path):
    """Another process holding the write lock (a second Quantdesk) gives ChatStoreError."""
    import sqlite3
    from quantdesk.core.chatstore import ChatStore, ChatStoreError
    path = tmp_path / "chats.sqlite3"
    store = ChatStore(path)
    conv = store.create_conversation("kept")
    store._db.execute("PRAGMA busy_timeout = 100")  # do not wait the default 10 s here
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ChatStoreError, match="could not be saved"):
            store.add_message(conv.id, "user", "hello")
        with pytest.raises(ChatStoreError, match="could not be saved"):
            store.update_conversation(conv.id, title="renamed")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.add_message(conv.id, "user", "hello").content == "hello"  # usable again
    store.close()


def test_schema_1_auto_gpu_layers_become_the_word_auto(tmp_path):
    """Schema 1 stored the window's "auto" as n_gpu_layers -1 (which llama.cpp reads as "all")."""
    from quantdesk.core.chatstore import SCHEMA
    path = tmp_path / "chats.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    rows = [("auto chat", {"n_gpu_layers": -1, "n_ctx": 4096}),
            ("cpu chat", {"n_gpu_layers": 0}), ("manual chat", {"n_gpu_layers": 12}),
            ("no layers", {"temperature": 0.3})]
    for title, settings in rows:
        db.execute("INSERT INTO conversations (title, settings, created, updated)"
                   " VALUES (?, ?, 0, 0)", (title, json.dumps(settings)))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    with ChatStore(path) as store:
        by_title = {c.title: c for c in store.list_conversations()}
        assert by_title["auto chat"].settings == {"n_gpu_layers": "auto", "n_ctx": 4096}
        assert by_title["cpu chat"].settings == {"n_gpu_layers": 0}
        assert by_title["manual chat"].settings == {"n_gpu_layers": 12}
        assert by_title["no layers"].settings == {"temperature": 0.3}
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()
