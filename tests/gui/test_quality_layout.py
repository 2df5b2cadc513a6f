"""What the screenshot tour found on the Quality page: library pickers that a library refresh reset
to the first model (a quant looked chosen that was not in the list), a missing page title, chart
ticks rounded to whole MB on a 2 MB axis (104.45 shown as "104")."""
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


def test_size_ticks_have_the_decimals_their_axis_needs():
    from quantdesk.app.pages.quality.kld_chart import size_tick
    # one point: the axis spans 2 MB around it
    assert [size_tick(x, 2.0) for x in (104.5, 105.5, 106.5)] == ["104.5", "105.5", "106.5"]
    assert size_tick(105.52, 0.5) == "105.52"
    assert [size_tick(x, 400.0) for x in (86.4, 486.4)] == ["86", "486"]
