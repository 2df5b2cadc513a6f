"""The chat page driven by qtbot with the real starter model (SmolLM2-135M through the engine host).

Model loads are the slow part on a 2-core machine, so one test walks a whole conversation with a
single load; the host-death test needs a second one by design (the next load is a fresh host).
"""
from __future__ import annotations

import os
import signal

import psutil
import pytest
from PySide6.QtCore import Qt, QUrl

pytestmark = pytest.mark.gui

QUESTION = "What is the capital of France? Answer in one sentence."
STORY = "Write a long story about a lighthouse keeper and a storm."


@pytest.fixture
def chat(window, starter_model):
    page = window.chat_page
    window.show_page("Chat")
    page.select_model(starter_model)
    s = page.settings
    s.temperature.setValue(0.0)  # greedy: reproducible replies
    s.max_tokens.setValue(40)
    s.n_ctx.setValue(1024)
    s.gpu_layers.set_layers(0)
    return page


def host_pid(window):
    """The engine host process of the model the window's model manager has loaded."""
    hosts = window.models.loaded()
    return hosts[0].pid if hosts else None


def fresh_conversation_settings(cid):
    from quantdesk.core.chatstore import ChatStore
    with ChatStore() as store:
        return store.get_conversation(cid).settings


def fresh_store_messages(cid):
    """The conversation as a new ChatStore (as after a restart) sees it."""
    from quantdesk.core.chatstore import ChatStore
    store = ChatStore()
    try:
        return store.messages(cid)
    finally:
        store.close()


@pytest.mark.slow
def test_send_streams_persists_stops_regenerates_and_edits(chat, window, qtbot):
    # Library > "Chat with this" opens the Chat page with the model picked and loading.
    window.show_page("Library")
    assert window.library_page.select_path(chat.current_model().path)
    with qtbot.waitSignal(chat.model_loaded, timeout=180000) as loaded:
        window.library_page.chat_button.click()
    assert window.current_page() == "Chat" and loaded.args[0].n_ctx == 1024
    assert chat.model_picker.currentText() == "SmolLM2-135M-Instruct.Q4_1"
    assert "Loaded" in chat.status.text()

    streamed = []
    chat.token_received.connect(streamed.append)

    # Send with Enter in the composer; tokens arrive as signals, then the reply is finalised.
    chat.composer.setFocus()
    qtbot.keyClicks(chat.composer, QUESTION)
    with qtbot.waitSignal(chat.reply_finished, timeout=180000) as finished:
        qtbot.keyClick(chat.composer, "\r")
    done = finished.args[0]
    assert done.finish_reason in ("stop", "length") and done.completion_tokens > 0
    assert len(streamed) >= 2 and chat.composer.toPlainText() == ""
    cid = chat.current_conversation_id()
    stored = fresh_store_messages(cid)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[0].content == QUESTION
    reply = stored[1]
    assert reply.complete and reply.content == "".join(streamed) and "Paris" in reply.content
    assert reply.stats["tokens_per_second"] > 0
    assert "Paris" in chat.view.toPlainText()
    assert "tokens/s" in chat.status.text() and f"/ {done.n_ctx}" in chat.status.text()
    assert chat.conversations.conversation(0).title.startswith("What is the capital")

    # Stop mid-reply: press Stop as soon as the first token is shown.
    chat.settings.max_tokens.setValue(400)
    chat.token_received.connect(lambda _t: chat.stop_button.click() if chat.is_busy() else None)
    with qtbot.waitSignal(chat.reply_finished, timeout=180000) as finished:
        assert chat.send(STORY)
    stopped = finished.args[0]
    assert stopped.finish_reason == "cancelled" and stopped.completion_tokens < 400
    chat.token_received.disconnect()
    chat.token_received.connect(streamed.append)
    last = fresh_store_messages(cid)[-1]
    assert last.role == "assistant" and last.stats["finish_reason"] == "cancelled"
    assert not chat.is_busy() and chat.send_button.isEnabled()

    # Regenerate replaces the last reply (a new message, the old one gone).
    chat.settings.max_tokens.setValue(12)
    old_ids = {m.id for m in fresh_store_messages(cid)}
    with qtbot.waitSignal(chat.reply_finished, timeout=180000):
        chat.regen_button.click()
    after = fresh_store_messages(cid)
    assert [m.role for m in after] == ["user", "assistant", "user", "assistant"]
    assert after[-1].id not in old_ids and after[-1].complete and after[-1].content
    assert after[-2].content == STORY

    # Edit-and-resend the last user message: it and its reply are replaced.
    chat.edit_button.click()
    assert chat.composer.toPlainText() == STORY and chat.edit_label.isVisibleTo(chat)
    chat.composer.setPlainText("Name one colour of the rainbow.")
    with qtbot.waitSignal(chat.reply_finished, timeout=180000):
        chat.send_button.click()
    edited = fresh_store_messages(cid)
    assert [m.content for m in edited if m.role == "user"] == [
        QUESTION, "Name one colour of the rainbow."]
    assert edited[-1].role == "assistant" and edited[-1].complete and edited[-1].content


@pytest.mark.slow
def test_killed_host_is_reported_and_the_next_send_loads_again(chat, window, qtbot):
    chat.settings.max_tokens.setValue(400)

    def kill_host(_text):
        pid = host_pid(window)
        if pid and chat.is_busy():
            chat.token_received.disconnect(kill_host)
            os.kill(pid, signal.SIGKILL)

    chat.token_received.connect(kill_host)
    with qtbot.waitSignal(chat.reply_failed, timeout=180000) as failed:
        chat.send(STORY)
    assert "exited unexpectedly" in failed.args[0]
    assert window.isVisible() and not chat.is_busy()
    assert "exited unexpectedly" in chat.view.toPlainText()
    cid = chat.current_conversation_id()
    partial = fresh_store_messages(cid)[-1]
    assert partial.role == "assistant" and not partial.complete and partial.content

    # The next send starts a fresh host; GPU layers "auto" is decided by the planner.
    from quantdesk.core.runtime import LoadRequest, ModelPlanned
    chat.settings.max_tokens.setValue(20)
    chat.settings.gpu_layers.set_layers("auto")
    assert chat.settings.gpu_layers.text() == "auto"
    assert fresh_conversation_settings(cid)["n_gpu_layers"] == 0   # saved at the next send
    loads, events = [], []
    chat.model_loaded.connect(loads.append)
    window.models.subscribe(events.append)
    with qtbot.waitSignal(chat.reply_finished, timeout=180000) as finished:
        chat.send(QUESTION)
    assert finished.args[0].completion_tokens > 0
    assert fresh_store_messages(cid)[-1].complete
    assert fresh_conversation_settings(cid)["n_gpu_layers"] == "auto"
    expected = window.models.resolve(LoadRequest(loads[0].path, n_ctx=1024, gpu_layers="auto"))
    planned = [e.resolved for e in events if isinstance(e, ModelPlanned)]
    assert [r.note for r in planned] == [expected.note] and len(loads) == 1
    assert planned[0].n_gpu_layers == expected.n_gpu_layers and planned[0].n_ctx == 1024
    # The host offloads what the planner asked for, or fewer when its build has no GPU backend.
    assert 0 <= loads[0].n_gpu_layers <= max(0, expected.n_gpu_layers)

    # Closing the window ends the host process.
    pid = host_pid(window)
    assert pid and psutil.pid_exists(pid)
    window.close()
    assert not psutil.pid_exists(pid)


def test_conversations_new_rename_delete(window, qtbot, monkeypatch):
    chat = window.chat_page
    first = chat.new_conversation()
    second = chat.new_conversation()
    assert chat.current_conversation_id() == second
    assert chat.conversations.rowCount() == 2
    chat.rename_conversation("Trip planning")
    titles = [c.title for c in chat.store.list_conversations()]
    assert "Trip planning" in titles
    row = chat.conversations.row_of(second)
    assert chat.conversations.index(row).data() == "Trip planning"

    monkeypatch.setattr(chat, "ask_confirmation", lambda text: False)
    chat.delete_button.click()
    assert chat.conversations.rowCount() == 2  # the user said no
    monkeypatch.setattr(chat, "ask_confirmation", lambda text: True)
    chat.delete_button.click()
    assert [c.id for c in chat.store.list_conversations()] == [first]
    assert chat.current_conversation_id() == first


def test_composer_enter_sends_and_shift_enter_adds_a_line(qtbot):
    from quantdesk.app.pages.chat.composer import Composer
    composer = Composer()  # on its own: on the chat page, Enter would start a real reply
    qtbot.addWidget(composer)
    sent = []
    composer.submitted.connect(sent.append)
    qtbot.keyClicks(composer, "first line")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "second line")
    assert sent == [] and composer.toPlainText() == "first line\nsecond line"
    qtbot.keyClick(composer, Qt.Key.Key_Return)
    assert sent == ["first line\nsecond line"]


def test_transcript_shows_markdown_code_and_never_raw_html(window):
    from quantdesk.app.markdown_view import message_html
    html = message_html("assistant", "Use **this**:\n\n```python\nx = 1  # one\n```\n"
                        "<img src='http://example.com/t.png'><script>alert(1)</script>")
    assert "<strong>this</strong>" in html
    assert 'style="color' in html  # Pygments colours the code
    assert "<img" not in html and "&lt;img" in html and "<script" not in html
    view = window.chat_page.view
    assert view.loadResource(0, QUrl("http://example.com/t.png")) is None


def test_gpu_layers_box_speaks_typed_gpu_layers(qtbot):
    from quantdesk.app.pages.chat.chat_settings import ChatSettingsPanel
    panel = ChatSettingsPanel()
    qtbot.addWidget(panel)
    assert panel.settings()["n_gpu_layers"] == "auto"   # the default: the planner decides
    box = panel.gpu_layers
    for layers, text in (("all", "all"), (0, "0"), (12, "12"), ("auto", "auto")):
        box.set_layers(layers)
        assert (box.layers(), box.text()) == (layers, text)
    box.set_layers(5)
    box.stepDown()
    assert box.layers() == 4
    box.selectAll()
    qtbot.keyClicks(box, "all")
    box.interpretText()
    assert box.layers() == "all" and panel.settings()["n_gpu_layers"] == "all"
    panel.set_settings({"n_gpu_layers": "nonsense"})   # a hand-edited file: the default again
    assert box.layers() == "auto"


# ---- issue 14: a conversation's model, the state line, the layout -------------------------------
def measured(panel) -> list[str]:
    return [panel.text(row, "measured") for row in ("GPU layers", "RAM", "VRAM")]


def pick_in_picker(chat, path, answer, monkeypatch):
    """The person chooses `path` in the picker and answers the confirmation with `answer`."""
    asked = []
    monkeypatch.setattr(chat, "ask_confirmation", lambda text: asked.append(text) or answer)
    row = chat.library.model.row_of(path)
    chat.model_picker.setCurrentIndex(row)
    chat.model_picker.activated.emit(row)
    return asked


@pytest.mark.slow
def test_each_chat_keeps_its_model_and_the_plan_panel_shows_one_load(
        chat, window, qtbot, starter_model, model_copy, tmp_path, monkeypatch):
    from quantdesk.app.pages.chat.conversation_model import MODEL_ROLE
    with qtbot.waitSignal(window.library.opened, timeout=60000):
        window.open_paths([str(model_copy)])
    chat.settings.max_tokens.setValue(4)
    panel = chat.plan_panel

    # "Chat with this": a new chat with the starter model, loaded; both columns of that load.
    with qtbot.waitSignal(chat.model_loaded, timeout=180000):
        window.chat_with(str(starter_model))
    first = chat.current_conversation_id()
    assert chat.store.get_conversation(first).model_path == str(starter_model)
    assert panel.subject.text() == starter_model.name
    assert "context 1024" in panel.subject_settings.text()
    loaded_figures = measured(panel)
    assert "—" not in loaded_figures and "loading…" not in loaded_figures

    # A chat with another model: the picker and the panel follow it, nothing measured for it.
    second = chat.new_conversation(model_path=model_copy)
    assert chat.model_picker.currentIndex() == chat.library.model.row_of(str(model_copy))
    assert panel.subject.text() == "my-smollm.gguf" and measured(panel) == ["—"] * 3
    qtbot.waitUntil(lambda: panel.text("RAM", "planned") not in ("…", "—"), timeout=60000)
    row = chat.conversations.row_of
    assert chat.conversations.index(row(second)).data(MODEL_ROLE) == "my-smollm.gguf"
    assert chat.conversations.index(row(first)).data(MODEL_ROLE) == starter_model.name

    # Back to the first chat: its model, and its load's figures again (the host is loaded).
    chat.select_conversation(first)
    assert chat.model_picker.currentIndex() == chat.library.model.row_of(str(starter_model))
    assert panel.subject.text() == starter_model.name and measured(panel) == loaded_figures
    assert chat.store.get_conversation(second).model_path == str(model_copy)

    # Switching the model of a chat with replies is asked for; "No" changes nothing.
    with qtbot.waitSignal(chat.reply_finished, timeout=180000):
        chat.send("Hi")
    asked = pick_in_picker(chat, str(model_copy), False, monkeypatch)
    assert len(asked) == 1 and starter_model.name in asked[0]
    assert chat.store.get_conversation(first).model_path == str(starter_model)
    assert chat.model_picker.currentIndex() == chat.library.model.row_of(str(starter_model))
    pick_in_picker(chat, str(model_copy), True, monkeypatch)
    assert chat.store.get_conversation(first).model_path == str(model_copy)
    assert chat.conversations.index(row(first)).data(MODEL_ROLE) == "my-smollm.gguf"
    assert "now uses my-smollm.gguf" in chat.status.text()
    assert panel.subject.text() == "my-smollm.gguf" and measured(panel) == ["—"] * 3

    # A chat whose model file is gone says so, and sending is refused with the reason.
    gone = tmp_path / "gone.gguf"
    gone.write_bytes(model_copy.read_bytes())
    third = chat.new_conversation(model_path=gone)
    chat.select_conversation(second)
    gone.unlink()
    chat.select_conversation(third)
    assert chat.model_warning.isVisibleTo(chat) and str(gone) in chat.model_warning.text()
    assert chat.conversations.index(row(third)).data(MODEL_ROLE) == "gone.gguf (file missing)"
    assert chat.model_picker.currentIndex() == -1
    assert chat.model_picker.placeholderText() == "gone.gguf (file missing)"
    assert chat.send("Hello?") is False and "gone" in chat.status.text()
    assert chat.load_request() is None and measured(panel) == ["—"] * 3

    # Quantize's "Chat with it" opens a new chat with that model, never the one shown.
    before = {c.id for c in chat.store.list_conversations()}
    with qtbot.waitSignal(chat.model_loaded, timeout=180000):
        window.quantize_page.build().chat_requested.emit(str(starter_model))
    new = chat.current_conversation_id()
    assert new not in before and len(chat.store.list_conversations()) == len(before) + 1
    assert chat.store.get_conversation(new).model_path == str(starter_model)
    assert chat.store.get_conversation(third).model_path == str(gone)
    assert window.current_page() == "Chat" and measured(panel) == loaded_figures


@pytest.mark.slow
def test_the_state_line_says_one_current_thing(chat, window, qtbot, starter_model, not_gguf):
    first = chat.new_conversation(model_path=not_gguf)
    with qtbot.waitSignal(chat.reply_failed, timeout=180000):
        chat.load_button.click()
    assert chat.status.text().startswith("Error:") and "Error:" in chat.view.toPlainText()

    # The file is fixed and loaded again: "Loading…" at once, without the old error beside it.
    not_gguf.write_bytes(starter_model.read_bytes())
    with qtbot.waitSignal(chat.model_loaded, timeout=180000):
        chat.load_button.click()
        assert chat.status.text().startswith("Loading notes.gguf")
        assert chat.progress.isVisibleTo(chat) and "Error" not in chat.view.toPlainText()
    assert chat.status.text().startswith("Loaded notes.gguf")
    assert not chat.progress.isVisibleTo(chat)
    assert "Error" not in chat.view.toPlainText()

    # A reply: the line gives its stats; another chat never shows them, coming back does.
    chat.settings.max_tokens.setValue(6)
    with qtbot.waitSignal(chat.reply_finished, timeout=180000) as finished:
        chat.send("Hi")
    rate = f"{finished.args[0].tokens_per_second:.1f} tokens/s"
    assert chat.status.text().startswith("Last reply: " + rate)
    chat.new_conversation()
    assert "tokens/s" not in chat.status.text()
    assert chat.status.text().startswith("Loaded notes.gguf")   # its model, loaded
    chat.select_conversation(first)
    assert chat.status.text().startswith("Last reply: " + rate)

    # An error belongs to its chat: gone on the next one, and once the chat moves on.
    chat._show_error("the disk is full")
    assert chat.status.text() == "Error: the disk is full"
    chat.new_conversation()
    assert "Error" not in chat.status.text() and "Error" not in chat.view.toPlainText()


@pytest.mark.parametrize("size", [None, (1280, 800)], ids=["default", "1280x800"])
def test_pages_keep_the_window_size_and_the_chat_panel_never_scrolls_sideways(window, qtbot, size):
    from quantdesk.app.main_window import PAGES
    from quantdesk.core.engine.types import LoadResult
    if size is not None:
        window.resize(*size)
    qtbot.wait(50)
    start = window.size()

    def tour():
        for name in PAGES + ("Chat",):
            window.show_page(name)
            qtbot.wait(30)
            assert window.size() == start, name

    tour()
    chat = window.chat_page
    # What a load leaves on the page: the longest texts it shows.
    result = LoadResult(path="/models/a-rather-long-model-file-name-Q4_K_M.gguf", n_ctx=131072,
                        n_gpu_layers=0, load_seconds=12.5, has_chat_template=True,
                        n_ctx_train=131072, rss_before=10**8, rss_after=10**8 + 123_456_789)
    chat.plan_panel.show_measured(result, None)
    chat._state.notice = (chat._state.cid, "Loaded a-rather-long-model-file-name-Q4_K_M.gguf "
                          "in 12.5 s · context 131072 · GPU layers 0 (auto: CPU only, no plan: "
                          "the planner cannot read this model)")
    chat._refresh_state()
    tour()
    scroll = chat.settings_scroll
    assert scroll.isVisible() and not scroll.horizontalScrollBar().isVisible()
    assert chat.settings.width() <= scroll.viewport().width()
    vram = chat.plan_panel.cells[("VRAM", "measured")]
    assert vram.text() == "no NVIDIA GPU" and vram.toolTip() == "no NVIDIA GPU"
    assert chat.status.toolTip() == chat.status.text()
