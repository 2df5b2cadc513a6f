"""One quantize job per output file in this process, whatever door starts the second one."""
from __future__ import annotations

import threading

import pytest


def test_a_second_job_on_an_output_being_written_is_refused(tiny_hf, tmp_path):
    from quantdesk.core.cancel import CancelToken
    from quantdesk.core.convert import ConvertError
    from quantdesk.core.runtime.quantize import QuantizeRequest, quantize_job
    folder, _weights = tiny_hf
    out = tmp_path / "tiny-Q8_0.gguf"
    request = QuantizeRequest(str(folder), str(out), "Q8_0", backend="cpu")
    writing, release, outcome = threading.Event(), threading.Event(), {}

    def report(_progress):   # the first job holds after its first chunk
        writing.set()
        release.wait(60)

    def first():
        try:
            outcome["result"] = quantize_job(request)(report, CancelToken())
        except Exception as exc:  # noqa: BLE001 - asserted below
            outcome["error"] = exc
    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert writing.wait(120), "the first job never reported progress"
        with pytest.raises(ConvertError, match="already being written"):
            quantize_job(request)(lambda _p: None, CancelToken())
    finally:
        release.set()
        thread.join(120)
    assert "error" not in outcome and outcome["result"].path == out and out.exists()
    # Once the first job ended, the output can be written again (here: replaced on request).
    again = quantize_job(QuantizeRequest(str(folder), str(out), "Q8_0", backend="cpu",
                                         overwrite=True))(lambda _p: None, CancelToken())
    assert again.path == out
