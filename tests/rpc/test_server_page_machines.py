"""The window's Server page serves with the machines enabled in Settings > Machines: a request's
load really puts layers on the enabled worker, a machine that is down is named in the page's
one-line status (the server still starts), and a disabled one is not used."""
from __future__ import annotations

import pytest

from .conftest import free_port

pytestmark = [pytest.mark.gui, pytest.mark.slow]

STARTER_ID = "SmolLM2-135M-Instruct.Q4_1"


def test_server_page_loads_on_the_enabled_machine(qtbot, tmp_path, monkeypatch, start_worker):
    import openai
    live, spare = start_worker(), start_worker()
    dead = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    from quantdesk.core.settings import update_settings
    update_settings(machines=[{"endpoint": dead, "enabled": True},
                              {"endpoint": live.endpoint, "enabled": True},
                              {"endpoint": spare.endpoint, "enabled": False}])
    from quantdesk.app.main_window import MainWindow
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.library.model.rowCount() > 0)   # the starter model listed
    window.show_page("Server")
    page = window.server_page.build()
    assert page.machines.text() == f"{dead}, {live.endpoint} (Settings > Machines; asked at Start)"
    page.port.setValue(free_port())
    page.start()
    qtbot.waitUntil(lambda: page.running, timeout=30000)
    status = page.status.text()
    assert status.startswith(f"Serving at {page.url.text()}; 1 of 2 machine(s) left out: "
                             f"worker {dead} is not reachable (") and "\n" not in status
    assert page.machines.text().startswith(f"{live.endpoint} (")
    assert f"left out: worker {dead} is not reachable (" in page.machines.text()

    client = openai.OpenAI(base_url=page.url.text(), api_key="x", max_retries=0, timeout=120)
    reply = client.chat.completions.create(model=STARTER_ID, max_tokens=2, temperature=0,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.usage.completion_tokens == 2
    [host] = window.models.loaded()
    assert host.resolved.workers == (live.endpoint,)         # the dead one left out, the
    assert host.result.rpc_servers == [live.endpoint]        # disabled one never asked
    placed = {p["endpoint"]: p["layers"] for p in host.result.placement if p["endpoint"]}
    assert placed == {live.endpoint: host.result.n_gpu_layers} and placed[live.endpoint] > 0
    qtbot.waitUntil(lambda: page.loaded.rowCount() == 1, timeout=5000)
    assert page.loaded.data(page.loaded.index(0, 3)) == live.endpoint
    page.stop()
    assert page.status.text() == "Stopped"
