"""Settings > Machines: add, test (off the GUI thread), enable/disable, remove; saved at once."""
from __future__ import annotations

import pytest

from quantdesk.core.settings import load_settings

from .conftest import free_port
from .fake_worker import FakeWorker

pytestmark = pytest.mark.gui


@pytest.fixture
def box(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path / "home"))
    from quantdesk.app.pages.settings.machines import MachinesBox
    widget = MachinesBox()
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def test_add_test_disable_remove(qtbot, box):
    live, dead = FakeWorker(free=3 << 30, total=8 << 30), f"127.0.0.1:{free_port()}"
    try:
        with qtbot.waitSignal(box.tested, timeout=10000):
            box.add_machine(live.endpoint)
        assert box.status(live.endpoint) == "3.2 GB free of 8.6 GB"   # decimal units, as elsewhere
        with qtbot.waitSignal(box.tested, timeout=10000):
            box.add_machine(dead)
        assert box.status(dead).startswith(f"not usable: worker {dead} is not reachable")
        assert load_settings().enabled_machines() == (live.endpoint, dead)
        box.table.item(1, 0).setCheckState(box.table.item(1, 0).checkState().Unchecked)
        assert load_settings().enabled_machines() == (live.endpoint,)
        assert [m["endpoint"] for m in load_settings().machines] == [live.endpoint, dead]
        box.table.selectRow(1)
        box.remove_selected()
        assert [m["endpoint"] for m in load_settings().machines] == [live.endpoint]
    finally:
        live.close()


def test_bad_or_repeated_address_is_one_line_and_not_saved(box):
    box.add_machine("not an address:port")
    assert "is not a worker address" in box.message.text()
    box.add_machine("10.0.0.9:50052")
    box.add_machine("10.0.0.9")          # the default port: the same machine
    assert box.message.text() == "10.0.0.9:50052 is in the list already."
    assert [m["endpoint"] for m in load_settings().machines] == ["10.0.0.9:50052"]


def test_a_busy_worker_does_not_block_the_window(qtbot, box):
    silent = FakeWorker("silent")
    try:
        box.add_machine(silent.endpoint)       # returns at once; the test runs in a pool thread
        assert box.status(silent.endpoint) == "testing…"
        with qtbot.waitSignal(box.tested, timeout=10000):
            pass
        assert "serving another client" in box.status(silent.endpoint)
    finally:
        silent.close()


def test_plan_panel_shows_the_split_then_the_placement(qtbot, starter_model):
    from quantdesk.app.pages.chat.plan_panel import PlanPanel
    from quantdesk.core.engine.types import LoadResult
    from quantdesk.core.hardware import Hardware
    from quantdesk.core.planner import load_profile
    from quantdesk.core.planner.split import plan_split
    from quantdesk.core.rpc.wire import WorkerInfo
    panel = PlanPanel()
    qtbot.addWidget(panel)
    hw = Hardware("cpu", 2, 2, ["AVX2"], 16 << 30, 16 << 30, [], False)
    split = plan_split(load_profile(starter_model), hw,
                       [WorkerInfo("10.0.0.1:50052", (7, 0, 0), ((8 << 30, 8 << 30),))], n_ctx=1024)
    panel.show_split(split)
    assert not panel.split_planned.isHidden()
    assert panel.split_planned.text().startswith("Planned: 10.0.0.1:50052 31 layers (")
    assert " · CPU 0 layers (" in panel.split_planned.text()
    result = LoadResult(path="m", n_ctx=1024, n_gpu_layers=31, load_seconds=1, has_chat_template=True,
                        n_ctx_train=8192, rss_before=0, rss_after=1 << 20, placement=[
                            {"device": "RPC0", "endpoint": "10.0.0.1:50052", "layers": 31,
                             "total_bytes": 200_000_000},
                            {"device": "CPU", "endpoint": "", "layers": 0, "total_bytes": 40_000_000}])
    panel.show_measured(result, None)
    assert panel.split_measured.text() == ("Measured: 10.0.0.1:50052 31 layers (200.0 MB) · "
                                           "CPU 0 layers (40.0 MB)")
    panel.show_split(None)          # a load without workers: both lines hidden
    assert panel.split_planned.isHidden() and panel.split_measured.isHidden()
    panel.show_split(None, ["left out: worker 10.0.0.2:50052 is not reachable (No route to host)"])
    assert "left out: worker 10.0.0.2:50052 is not reachable" in panel.split_planned.text()
