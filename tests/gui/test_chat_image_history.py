"""A conversation's stored images on the chat page, without a model: the transcript names each
image under its message, "Edit last" attaches them again, and cancelling the edit drops them
and gives back the draft (text and images) the edit replaced."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_stored_images_show_in_the_transcript_and_come_back_on_edit(window):
    page = window.chat_page
    window.show_page("Chat")
    cid = page.store.create_conversation("Pictures").id
    page.store.add_message(cid, "user", "What is in these?",
                           images=[("cat_1.png", b"\x89PNG cat"), ("<dog>.jpg", b"\xff\xd8 dog")])
    page.store.add_message(cid, "assistant", "Animals.")
    page.conversations.reload()
    page.select_conversation(cid)
    text = page.view.toPlainText()
    assert "[image: cat_1.png]" in text and "[image: <dog>.jpg]" in text   # names, not markup
    assert text.index("What is in these?") < text.index("[image: cat_1.png]") \
        < text.index("Animals.")

    page.composer.setPlainText("a draft")
    page.set_attachments([{"type": "image", "data": b"\x89PNG bird", "name": "bird.png"}])
    page.edit_last()
    assert page.composer.toPlainText() == "What is in these?"
    assert page.attachments_label.text() == "Attached: cat_1.png, <dog>.jpg"
    assert [(p["name"], p["data"]) for p in page.attachments()] == [
        ("cat_1.png", b"\x89PNG cat"), ("<dog>.jpg", b"\xff\xd8 dog")]
    page.cancel_edit()
    assert page.composer.toPlainText() == "a draft"
    assert page.attachments_label.text() == "Attached: bird.png"
    assert [p["data"] for p in page.attachments()] == [b"\x89PNG bird"]
