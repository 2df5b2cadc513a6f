"""Worker addresses and the read-only probe (no llama.cpp): every failure is one line, in time."""
from __future__ import annotations

import socket

import pytest

from quantdesk.core.rpc.endpoints import EndpointError, is_loopback, parse_endpoint, parse_endpoints
from quantdesk.core.rpc.wire import WorkerBusy, WorkerError, WorkerUnreachable, probe

from .fake_worker import FakeWorker


def test_addresses_are_normalised_and_bad_ones_named():
    assert parse_endpoints(" 10.0.0.2:9 ,box.lan, 10.0.0.2:9") == ("10.0.0.2:9", "box.lan:50052")
    for bad in ("[::1]:50052", "host:0", "host:70000", "host:port", ":50052", "a b:1"):
        with pytest.raises(EndpointError) as info:
            parse_endpoint(bad)
        assert "\n" not in str(info.value)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("127.3.2.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_probe_reads_version_devices_and_memory():
    w = FakeWorker(free=3 << 30, total=8 << 30)
    try:
        info = probe(w.endpoint)
    finally:
        w.close()
    assert info.version == (7, 0, 0)
    assert info.devices == ((3 << 30, 8 << 30),)
    assert info.free_bytes == 3 << 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_is_unreachable_at_once():
    # a refused connect ("is not reachable (Connection refused)"), not the timeout's wording
    with pytest.raises(WorkerUnreachable, match=r"is not reachable \(Connection refused\)"):
        probe(f"127.0.0.1:{_free_port()}")


def test_silent_listener_is_busy_after_the_timeout():
    w = FakeWorker("silent")
    try:
        with pytest.raises(WorkerBusy, match="serving another client"):
            probe(w.endpoint, timeout=0.3)
    finally:
        w.close()


@pytest.mark.parametrize("mode, words", [("old", "speaks RPC protocol 3.0.0"),
                                         ("garbage", "answered wrongly")])
def test_wrong_answers_are_one_line(mode, words):
    w = FakeWorker(mode)
    try:
        with pytest.raises(WorkerError) as info:
            probe(w.endpoint, timeout=1)
    finally:
        w.close()
    assert words in str(info.value) and "\n" not in str(info.value)
