"""Library page: filter box, removal with its confirmation (and deleting the file only on the
user's word), right-click menu on rows, look-alike names told apart."""
from __future__ import annotations

import shutil

import pytest
from PySide6.QtGui import QDesktopServices

pytestmark = pytest.mark.gui


def names(page) -> list[str]:
    return [page.proxy.index(r, 0).data() for r in range(page.proxy.rowCount())]


@pytest.fixture
def two_more(window, qtbot, starter_model, tmp_path):
    """Two copies of the starter under look-alike names in two folders, opened."""
    paths = []
    for folder, name in (("alpha", "My-Model.Q4_1.gguf"), ("beta", "my_model.q4_1.gguf")):
        (tmp_path / folder).mkdir()
        paths.append(tmp_path / folder / name)
        shutil.copyfile(starter_model, paths[-1])
    with qtbot.waitSignal(window.library.refreshed, timeout=20000):
        window.open_paths(paths)
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 3, timeout=20000)
    return paths


def test_filter_box_narrows_the_rows_and_keeps_a_selection(window, qtbot, two_more):
    page = window.library_page
    assert page.proxy.rowCount() == 3
    page.filter_edit.setText("ALPHA")   # case-insensitive, matches the folder shown in the name
    assert names(page) == ["My-Model.Q4_1  ·  alpha"]
    assert page.selected_entry().path == two_more[0]
    assert page.details.text().count("My-Model.Q4_1") >= 1
    page.filter_edit.setText("hf-cache")   # no model from the HF cache: empty, nothing selected
    assert page.proxy.rowCount() == 0 and page.selected_entry() is None
    assert not page.chat_button.isEnabled() and not page.remove_button.isEnabled()
    page.filter_edit.setText("starter")    # the Source column counts too
    assert page.proxy.rowCount() == 1 and page.selected_entry().source == "starter"
    # Selecting a model hidden by the filter (File › Open of it, say) clears the filter.
    assert page.select_path(two_more[1])
    assert page.filter_edit.text() == "" and page.selected_entry().path == two_more[1]


def test_look_alike_names_show_their_folder(window, two_more):
    shown = names(window.library_page)
    assert "My-Model.Q4_1  ·  alpha" in shown and "my_model.q4_1  ·  beta" in shown
    assert not any("·" in n for n in shown if "SmolLM2" in n)   # unique names stay plain


def test_remove_asks_and_deletes_only_when_ticked(window, qtbot, two_more):
    page = window.library_page
    questions = []
    page.ask_remove = lambda entry, plan: questions.append(plan) or None   # Cancel
    assert page.select_path(two_more[0])
    page.remove_button.click()
    assert questions and two_more[0] in [e.path for e in window.library.model.entries()]

    from quantdesk.app.pages.library.library_page import removal_question
    question, box = removal_question(page.selected_entry(), questions[0])
    assert "file stays on disk" in question
    assert "outside Quantdesk's models folder" in box and str(two_more[0].parent) in box

    page.ask_remove = lambda entry, plan: "delete"   # the box ticked: the user's explicit yes
    with qtbot.waitSignal(window.library.refreshed, timeout=20000):
        page.remove_button.click()
    assert not two_more[0].exists()
    assert two_more[0] not in [e.path for e in window.library.model.entries()]
    assert two_more[1].exists()


def test_context_menu_on_a_row(window, qtbot, two_more, monkeypatch):
    page = window.library_page
    assert page.select_path(two_more[1])
    menu = page.context_menu()
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert list(actions) == ["Chat with this", "Load settings…", "Show in folder",
                            "Remove from library…"]
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    actions["Show in folder"].trigger()
    assert opened == [str(two_more[1].parent)]
    page.chat_requested.disconnect(window.chat_with)   # no engine start: the signal is the point
    with qtbot.waitSignal(page.chat_requested) as blocker:
        actions["Chat with this"].trigger()
    assert blocker.args == [str(two_more[1])]
    page.filter_edit.setText("starter")
    starter_menu = {a.text(): a for a in page.context_menu().actions() if a.text()}
    assert not starter_menu["Remove from library…"].isEnabled()
