"""The Quality page in the window: its library pickers keep saying what is chosen when the library
list is refreshed (a refresh reset them to the first model: the tour's screenshot showed a quant
"chosen" in the picker that was not in the list)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_library_refresh_keeps_the_pickers_honest(window, qtbot, starter_model):
    window.show_page("Quality")
    page = window.quality_page.page
    assert page.title.text() == "Quality" and page.title.isVisibleTo(page)   # like the other pages
    assert page.quant_picker.currentIndex() == -1 and page.reference_picker.currentIndex() == -1
    with qtbot.waitSignal(window.library.refreshed, timeout=20000):
        window.library.refresh()
    # Nothing chosen yet: both still show their placeholders.
    assert page.quant_picker.currentIndex() == -1 and page.reference_picker.currentIndex() == -1

    page.set_reference(str(starter_model))
    row = window.library.model.row_of(starter_model)
    assert row >= 0 and page.reference_picker.currentIndex() == row
    with qtbot.waitSignal(window.library.refreshed, timeout=20000):
        window.library.refresh()
    assert page.reference_picker.currentIndex() == window.library.model.row_of(starter_model)
    assert page.quant_picker.currentIndex() == -1 and page.model_paths() == []
