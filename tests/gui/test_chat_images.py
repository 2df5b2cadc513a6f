"""The chat page's "Attach image…": the attached image reaches the model through the projector
beside it (the tiny random Gemma 3 of tests/engine/tiny_vision_chat.py), a missing file is
refused in the state line with the message and attachment kept, and the starter model (no
projector) answers with the one-line refusal."""
from __future__ import annotations

import pytest

from tests.engine.tiny_vision_chat import build_gguf_pair, random_image

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def vision_model(tmp_path):
    text, _ = build_gguf_pair(tmp_path)
    (tmp_path / "a.png").write_bytes(random_image(1))
    return text, tmp_path / "a.png"


def chat_with(window, path):
    page = window.chat_page
    window.show_page("Chat")
    page.select_model(path)
    page.settings.max_tokens.setValue(4)
    page.settings.n_ctx.setValue(512)
    page.settings.gpu_layers.set_layers(0)
    return page


def test_an_attached_image_is_read_by_the_model(window, qtbot, vision_model):
    text, image = vision_model
    page = chat_with(window, text)
    assert page.attach_button.isVisible() and not page.attachments_label.isVisible()
    page.attach_image(text.parent / "missing.png")
    assert page.attachments_label.text() == "Attached: missing.png"
    page.composer.setPlainText("Describe this")
    assert page.send("Describe this") is False          # refused, nothing lost
    assert page.attachments() == [str(text.parent / "missing.png")]
    assert page.composer.toPlainText() == "Describe this"
    assert page.session.messages() == []
    assert f"image 1: {text.parent / 'missing.png'}: no such file" in page.status.text()
    page.clear_attachments()
    page.attach_image(image)
    with qtbot.waitSignal(page.reply_finished, timeout=120000) as finished:
        assert page.send("Describe this") is True
    assert finished.args[0].image_tokens == 4
    assert page.attachments() == [] and not page.attachments_label.isVisible()
    stored = page.session.messages()
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].stats["image_tokens"] == 4
    assert [r.name for r in stored[0].images] == ["a.png"]          # saved with the message
    assert "[image: a.png]" in page.view.toPlainText()

    # "Edit last" attaches the stored image again: the edited message keeps it
    page.edit_last()
    assert page.attachments_label.text() == "Attached: a.png"
    with qtbot.waitSignal(page.reply_finished, timeout=120000) as finished:
        assert page.send("Describe this, briefly") is True
    assert finished.args[0].image_tokens == 4
    stored = page.session.messages()
    assert stored[0].content == "Describe this, briefly"
    assert [[r.name for r in m.images] for m in stored] == [["a.png"], []]


def test_a_model_without_a_projector_says_so(window, qtbot, starter_model, vision_model):
    page = chat_with(window, starter_model)
    page.attach_image(vision_model[1])
    with qtbot.waitSignal(page.reply_failed, timeout=180000) as failed:
        page.send("Describe this")
    assert failed.args[0] == ("this model was loaded without a vision projector (mmproj), so "
                              "it cannot read images; put its mmproj*.gguf beside the model "
                              "file (or name it with --mmproj), or leave the image out")
