"""ChatSession with images kept in the chat store, on the tiny random Gemma 3 and its projector
(tiny_vision_chat.py): a reopened conversation sends its earlier image again (the model sees it:
Done.image_tokens), regenerate keeps it, "Edit last" keeps it through message_images, and a
text-only follow-up still carries it in context."""
from __future__ import annotations

import sqlite3

import pytest

from quantdesk.core.chatstore import ChatStore
from quantdesk.core.hardware import detect
from quantdesk.core.runtime import ChatSession, ModelManager

from tiny_vision_chat import IMAGE_TOKENS, build_gguf_pair, random_image

pytestmark = pytest.mark.slow

SETTINGS = {"n_ctx": 512, "n_gpu_layers": 0, "n_threads": 2, "temperature": 0.0,
            "max_tokens": 2}


@pytest.fixture(scope="module")
def vision(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vision")
    text, _ = build_gguf_pair(folder)
    (folder / "a.png").write_bytes(random_image(1))
    return text, folder / "a.png"


@pytest.fixture(scope="module")
def models():
    manager = ModelManager(hardware=lambda: detect().with_overrides(vram=0))
    yield manager
    manager.shutdown()


def answer(reply):
    for _ in reply.events():
        pass
    return reply.done


def images_in(reply) -> list[bytes]:
    return [p["data"] for m in reply.messages if isinstance(m["content"], list)
            for p in m["content"] if p.get("type") == "image"]


def test_a_reopened_conversation_sends_its_images_again(tmp_path, vision, models):
    text, image = vision
    path = tmp_path / "chats.sqlite3"
    with ChatStore(path) as store:
        session = ChatSession(store, models)
        cid = session.new_conversation(model_path=text, settings=SETTINGS)
        assert answer(session.send("Describe this", images=[image])).image_tokens == IMAGE_TOKENS

    with ChatStore(path) as store:                       # as after a restart
        session = ChatSession(store, models, cid)
        reply = session.regenerate()
        assert images_in(reply) == [image.read_bytes()]
        assert answer(reply).image_tokens == IMAGE_TOKENS

        last = session.last_user_message()
        kept = session.message_images(last)
        assert [p["name"] for p in kept] == ["a.png"]
        reply = session.send("Describe this again", replace_from=last.id, images=kept)
        assert answer(reply).image_tokens == IMAGE_TOKENS

        reply = session.send("And the colours?")        # text only: the image stays in context
        assert images_in(reply) == [image.read_bytes()]
        assert answer(reply).image_tokens == IMAGE_TOKENS
        assert [(m.role, [r.name for r in m.images]) for m in session.messages()] == [
            ("user", ["a.png"]), ("assistant", []), ("user", []), ("assistant", [])]

        store.delete_conversation(cid)
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
    db.close()


def test_an_image_over_the_store_cap_is_refused_before_anything_changes(tmp_path, vision, models):
    text, image = vision
    with ChatStore(tmp_path / "chats.sqlite3", max_total_image_bytes=10) as store:
        session = ChatSession(store, models)
        cid = session.new_conversation(model_path=text, settings=SETTINGS)
        store.add_message(cid, "user", "earlier")
        from quantdesk.core.chatstore import ChatStoreError
        with pytest.raises(ChatStoreError, match="delete chats with images to attach more$"):
            session.send("Describe this", replace_from=store.messages(cid)[0].id,
                         images=[image])
        assert [m.content for m in session.messages()] == ["earlier"]   # not deleted


def test_a_text_model_gets_earlier_images_as_their_names(tmp_path, vision, models, starter_model):
    """A conversation switched to a model without a projector goes on: its earlier images become
    "[image: name]" lines; an image in the latest message is still sent (and refused)."""
    _, image = vision
    with ChatStore(tmp_path / "chats.sqlite3") as store:
        session = ChatSession(store, models)
        cid = session.new_conversation(model_path=starter_model, settings=SETTINGS)
        store.add_message(cid, "user", "Describe this", images=[("a.png", image.read_bytes())])
        store.add_message(cid, "assistant", "A picture.")
        reply = session.send("Thanks")
        assert reply.request.mmproj is None
        assert reply.messages[0] == {"role": "user", "content": "Describe this\n[image: a.png]"}
        assert images_in(reply) == []
        assert answer(reply).finish_reason in ("stop", "length")
        reply = session.send("And this one?", images=[image])
        assert images_in(reply) == [image.read_bytes()]
