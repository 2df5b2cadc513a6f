"""Which model a conversation uses (core.runtime.chat's rule): the file stored with it, switched
only on purpose, and a missing file refused before anything is stored or deleted. No model is
loaded here: a Reply is only created, never run."""
from __future__ import annotations

import shutil

import pytest

from quantdesk.core.chatstore import ChatStore
from quantdesk.core.runtime import ChatError, ChatSession, ConversationModel


@pytest.fixture
def store(tmp_path):
    with ChatStore(tmp_path / "chats.sqlite3") as s:
        yield s


def test_a_conversation_keeps_its_own_model_until_switched(store, tmp_path, starter_model):
    other = tmp_path / "other.gguf"
    shutil.copyfile(starter_model, other)
    session = ChatSession(store, models=None)
    first = session.new_conversation(model_path=starter_model)
    second = session.new_conversation(model_path=other)
    assert session.model() == ConversationModel(str(other))
    session.conversation_id = first
    assert session.model().name == starter_model.name and not session.model().missing
    assert session.send("Hello").request.path == str(starter_model)
    assert session.has_replies()

    assert session.switch_model(other) == ConversationModel(str(other))
    assert store.get_conversation(first).model_path == str(other)
    assert store.get_conversation(second).model_path == str(other)
    assert session.regenerate().request.path == str(other)


def test_a_missing_model_file_is_named_and_refused_without_losing_anything(store, tmp_path,
                                                                           starter_model):
    gone = tmp_path / "gone.gguf"
    shutil.copyfile(starter_model, gone)
    session = ChatSession(store, models=None)
    cid = session.new_conversation(model_path=gone)
    session.send("Hello")
    before = [(m.id, m.role) for m in store.messages(cid)]
    gone.unlink()

    model = session.model()
    assert model.missing and model.describe() == "gone.gguf (file missing)"
    with pytest.raises(ChatError, match="model file of this chat is gone"):
        session.send("Again")
    with pytest.raises(ChatError, match="model file of this chat is gone"):
        session.regenerate()
    assert [(m.id, m.role) for m in store.messages(cid)] == before   # the old reply stays

    session.switch_model(starter_model)
    assert not session.model().missing and session.regenerate() is not None


def test_no_model_chosen(store):
    session = ChatSession(store, models=None)
    session.new_conversation()
    assert session.model().describe() == "no model chosen"
    with pytest.raises(ChatError, match="pick a model first"):
        session.send("Hello")
