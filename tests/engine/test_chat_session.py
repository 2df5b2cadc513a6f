"""ChatSession over a real store and the real starter model: what is saved when, titles, edit,
regenerate, and Stop from another thread."""
from __future__ import annotations

import itertools
import threading

import pytest

from quantdesk.core.cancel import CancelToken
from quantdesk.core.chatstore import ChatStore
from quantdesk.core.engine import Token
from quantdesk.core.hardware import detect
from quantdesk.core.runtime import ChatSession, ModelLoaded, ModelManager

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France? Answer in one sentence."
STORY = "Write a very long story about a lighthouse keeper."


@pytest.fixture(scope="module")
def models():
    manager = ModelManager(hardware=lambda: detect().with_overrides(vram=0))
    yield manager
    manager.shutdown()


@pytest.fixture
def store(tmp_path):
    with ChatStore(tmp_path / "chats.sqlite3") as s:
        yield s


def settings(**over):
    return {"n_ctx": 1024, "n_gpu_layers": 0, "n_threads": 1, "temperature": 0.0,
            "max_tokens": 32, **over}


def test_a_reply_streams_into_the_store_with_its_stats(store, models, starter_model):
    session = ChatSession(store, models)
    cid = session.new_conversation(system_prompt="You answer briefly.",
                                   model_path=starter_model, settings=settings())
    reply = session.send(QUESTION)
    assert [m.role for m in store.messages(cid)] == ["user", "assistant"]
    assert reply.messages[0] == {"role": "system", "content": "You answer briefly."}
    events = []
    done = reply.run(events.append, CancelToken())
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert isinstance(events[-len(tokens) - 1], ModelLoaded) and len(tokens) >= 2
    stored = store.messages(cid)[-1]
    assert stored.complete and stored.content == "".join(tokens) and "Paris" in stored.content
    assert stored.stats["finish_reason"] == done.finish_reason in ("stop", "length")
    assert stored.stats["completion_tokens"] == done.completion_tokens > 0
    assert stored.stats["model"] == starter_model.name
    assert store.get_conversation(cid).title == QUESTION[:48]
    assert reply.host.resolved.n_ctx == done.n_ctx == 1024


def test_the_reply_is_saved_every_half_second_marked_incomplete(tmp_path, models, starter_model):
    path = tmp_path / "chats.sqlite3"
    clock = itertools.count(0.0, 0.3).__next__   # each look at the clock: 0.3 s later
    with ChatStore(path) as store:
        session = ChatSession(store, models, clock=clock)
        session.new_conversation(model_path=starter_model, settings=settings(max_tokens=12))
        reply = session.send(QUESTION)
        seen = []

        def report(event):
            if isinstance(event, Token):
                with ChatStore(path) as other:   # what a crash right now would leave
                    row = other.messages(session.conversation_id)[-1]
                seen.append((row.complete, row.content, reply.text))

        reply.run(report, CancelToken())
    saved = [content for complete, content, _ in seen if content]
    assert all(not complete for complete, _, _ in seen)
    assert len(saved) >= len(seen) // 2 - 1      # one save per 0.5 s: every second token here
    assert saved and all(reply.text.startswith(content) for content in saved)


def test_stop_from_another_thread_keeps_what_was_said(store, models, starter_model):
    session = ChatSession(store, models)
    session.new_conversation(model_path=starter_model, settings=settings(max_tokens=400))
    reply = session.send(STORY)
    cancel, count = CancelToken(), []

    def report(event):
        if isinstance(event, Token):
            count.append(event)
            if len(count) == 3:   # as the window's Stop button does, from its own thread
                threading.Thread(target=cancel.cancel).start()

    done = reply.run(report, cancel)
    assert done.finish_reason == "cancelled" and 3 <= done.completion_tokens < 100
    last = store.messages(session.conversation_id)[-1]
    assert last.role == "assistant" and last.content == reply.text and last.complete
    assert last.stats["finish_reason"] == "cancelled"


def test_a_reply_stopped_before_it_said_anything_leaves_no_row(store, models, starter_model):
    session = ChatSession(store, models)
    session.new_conversation(model_path=starter_model, settings=settings())
    reply = session.send(QUESTION)
    cancel = CancelToken()
    cancel.cancel()
    done = reply.run(lambda _e: None, cancel)
    assert done.finish_reason == "cancelled" and done.completion_tokens == 0
    assert [m.role for m in store.messages(session.conversation_id)] == ["user"]


def test_regenerate_and_edit_replace_what_follows(store, models, starter_model):
    session = ChatSession(store, models)
    session.new_conversation(model_path=starter_model, settings=settings(max_tokens=8))
    session.send(QUESTION).run(lambda _e: None, CancelToken())
    first = store.messages(session.conversation_id)
    session.regenerate().run(lambda _e: None, CancelToken())
    again = store.messages(session.conversation_id)
    assert [m.role for m in again] == ["user", "assistant"]
    assert again[0].id == first[0].id and again[1].id != first[1].id and again[1].complete

    edited = session.send("Name one colour of the rainbow.", replace_from=first[0].id)
    edited.run(lambda _e: None, CancelToken())
    after = store.messages(session.conversation_id)
    assert [m.content for m in after if m.role == "user"] == ["Name one colour of the rainbow."]
    assert after[-1].role == "assistant" and after[-1].content
    assert store.get_conversation(session.conversation_id).title == QUESTION[:48]
