"""The chat window splits a reasoning model's thoughts from its answer with the parser the API
server uses (core.engine.reasoning), so both agree on where the reasoning ends: a transcript of
crafted replies, and a real reply of the starter model under DeepSeek-R1's template (which opens
the <think> block in the prompt: the whole reply is thought until it closes)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from quantdesk.core.engine import reasoning

pytestmark = pytest.mark.gui
TEMPLATES = Path(__file__).parents[1] / "server" / "templates"


def test_the_transcript_shows_thinking_apart_from_the_answer(qtbot):
    from types import SimpleNamespace

    from quantdesk.app.pages.chat.transcript import transcript_html
    reply = SimpleNamespace(id=2, role="assistant", complete=True, stats={},
                            content="<think>\nCount: 2 and 2.\n</think>\n\nIt is **4**.")
    html = transcript_html([reply], None, "", None, reasoning=(reasoning.THINK, False))
    assert "Thinking:" in html and "Count: 2 and 2." in html and "<strong>4</strong>" in html
    assert "&lt;think" not in html and "think>" not in html
    # a model without markers: the reply as written (its tags escaped, nothing split)
    plain = transcript_html([reply], None, "", None, reasoning=(None, False))
    assert "Thinking:" not in plain
    # a block the prompt opened, still streaming: all thought so far, no answer yet
    live = transcript_html([reply], 2, "Count: 2", None, reasoning=(reasoning.THINK, True))
    assert "Thinking:</i> Count: 2" in live


def _r1_model(home: Path, starter: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        "template_models", Path(__file__).parents[1] / "engine" / "template_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (home / "models").mkdir(parents=True, exist_ok=True)
    template = (TEMPLATES / "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja").read_text()
    return module.with_chat_template(starter, home / "models" / "smollm2-r1.gguf", template)


@pytest.mark.slow
def test_a_reply_under_an_r1_template_shows_as_thinking(qtbot, home, starter_model):
    path = _r1_model(home, starter_model)
    from quantdesk.app.main_window import MainWindow
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.library.model.row_of(path) >= 0, timeout=30000)
    chat = window.chat_page
    window.show_page("Chat")
    chat.select_model(path)
    chat.settings.temperature.setValue(0.0)
    chat.settings.max_tokens.setValue(8)
    chat.settings.n_ctx.setValue(512)
    chat.settings.gpu_layers.set_layers(0)
    with qtbot.waitSignal(chat.reply_finished, timeout=180000):
        assert chat.send("What is two plus two?")
    stored = chat.session.messages()[-1]
    thought, answer = reasoning.split_reasoning(stored.content, reasoning.THINK, True)
    assert thought and answer == ""                   # this small model never closes it
    shown = chat.view.toPlainText()
    assert "Thinking: " + thought.split("\n")[0] in shown
