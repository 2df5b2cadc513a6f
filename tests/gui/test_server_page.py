"""The Server page drives the real API server over the window's own models: start, a request
through the OpenAI client appears in the log, the loaded model is listed and Unload ends it."""
from __future__ import annotations

import pytest

from tests.server.server_process import STARTER_ID, free_port


def test_lan_access_never_goes_without_a_key(window):
    window.show_page("Server")
    page = window.server_page.build()
    assert page.config().host == "127.0.0.1" and page.config().api_key is None
    page.lan.setChecked(True)
    assert page.config().host == "0.0.0.0" and len(page.key.text()) >= 24
    page.config().check()   # accepted: it has a key


@pytest.mark.slow
def test_start_request_log_loaded_unload_stop(window, qtbot):
    import openai
    window.show_page("Server")
    page = window.server_page.build()
    page.port.setValue(free_port())
    page.start()
    qtbot.waitUntil(lambda: page.running, timeout=30000)
    assert page.url.text() == f"http://127.0.0.1:{page.port.value()}/v1"
    client = openai.OpenAI(base_url=page.url.text(), api_key="x", max_retries=0, timeout=120)
    reply = client.chat.completions.create(model=STARTER_ID, max_tokens=2, temperature=0,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.usage.completion_tokens == 2
    qtbot.waitUntil(lambda: "/v1/chat/completions 200" in page.log.toPlainText(), timeout=5000)
    qtbot.waitUntil(lambda: page.loaded.rowCount() == 1, timeout=5000)
    assert window.models.loaded()[0].path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    page.loaded_view.selectRow(0)
    page.unload_selected()
    qtbot.waitUntil(lambda: page.loaded.rowCount() == 0, timeout=10000)
    assert window.models.loaded() == []
    page.stop()
    assert not page.running
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
