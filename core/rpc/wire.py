"""Ask a worker what it offers, without ggml: protocol version, devices, free and total memory.

Why not ggml_backend_rpc_get_device_memory: ggml's client calls GGML_ABORT when a worker cannot
be reached or answers wrongly (the whole process ends: the window, the server) and a connect or
read has no timeout (a worker on a machine that went away hangs the caller). The three read-only
messages needed here are short and fixed, so they are spoken here with socket timeouts; the
layout is ggml-rpc.cpp's (protocol v7, all structs packed, little-endian), and a test checks the
answer against ggml's own call.

A worker serves one client at a time (llama.cpp's accept loop): while an engine host uses it, a
probe's connection waits in the listen queue and the handshake never comes. That reads as
WorkerBusy after the timeout, not as a dead worker.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from .endpoints import split

PROTO_MAJOR = 7          # RPC_PROTO_MAJOR_VERSION of the pinned llama.cpp
CMD_GET_DEVICE_MEMORY, CMD_HELLO, CMD_DEVICE_COUNT = 11, 14, 15
CONN_CAPS = 24           # RPC_CONN_CAPS_SIZE: transport capabilities; all zero = plain TCP
MAX_DEVICES = 16
PROBE_TIMEOUT_S = 2.0


class WorkerError(Exception):
    """A worker that cannot be used now. str(e) is one line naming it."""


class WorkerUnreachable(WorkerError):
    """Nothing answers at that address (no worker, machine off, port closed, firewall)."""


class WorkerBusy(WorkerError):
    """Something listens but does not shake hands in time: serving another client, or not a worker."""


@dataclass(frozen=True)
class WorkerInfo:
    endpoint: str
    version: tuple[int, int, int]
    devices: tuple[tuple[int, int], ...]     # (free bytes, total bytes) per device

    @property
    def free_bytes(self) -> int:
        return sum(f for f, _ in self.devices)

    @property
    def total_bytes(self) -> int:
        return sum(t for _, t in self.devices)

    def to_json(self) -> dict:
        return {"endpoint": self.endpoint, "version": ".".join(map(str, self.version)),
                "free_bytes": self.free_bytes, "total_bytes": self.total_bytes,
                "devices": [{"free_bytes": f, "total_bytes": t} for f, t in self.devices]}


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def _call(sock: socket.socket, cmd: int, payload: bytes, reply_size: int) -> bytes:
    sock.sendall(struct.pack("<BQ", cmd, len(payload)) + payload)
    (size,) = struct.unpack("<Q", _recv_exact(sock, 8))
    if size != reply_size:
        raise ValueError(f"reply of {size} bytes to command {cmd}, expected {reply_size}")
    return _recv_exact(sock, size)


def probe(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> WorkerInfo:
    """The worker's protocol version and each device's free/total memory. Raises WorkerError
    subclasses (one line) within about `timeout` seconds per step."""
    host, port = split(endpoint)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        raise WorkerUnreachable(f"worker {endpoint} does not answer (no connection within "
                                f"{timeout:g} s)") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise WorkerUnreachable(f"worker {endpoint} is not reachable ({why})") from None
    try:
        with sock:
            sock.settimeout(timeout)
            try:
                hello = _call(sock, CMD_HELLO, bytes(CONN_CAPS), 4 + CONN_CAPS)
            except socket.timeout:
                raise WorkerBusy(f"worker {endpoint} accepts connections but gives no handshake "
                                 f"within {timeout:g} s: it is serving another client (a worker "
                                 f"serves one at a time), or it is not a llama.cpp RPC worker"
                                 ) from None
            version = tuple(hello[:3])
            if version[0] != PROTO_MAJOR:
                raise WorkerError(f"worker {endpoint} speaks RPC protocol "
                                  f"{'.'.join(map(str, version))}, this Quantdesk speaks "
                                  f"{PROTO_MAJOR}.x: run the same Quantdesk version on both")
            (count,) = struct.unpack("<I", _call(sock, CMD_DEVICE_COUNT, b"", 4))
            if not 0 < count <= MAX_DEVICES:
                raise WorkerError(f"worker {endpoint} reports {count} devices")
            devices = []
            for i in range(count):
                free, total = struct.unpack("<QQ", _call(sock, CMD_GET_DEVICE_MEMORY,
                                                          struct.pack("<I", i), 16))
                devices.append((int(free), int(total)))
            return WorkerInfo(endpoint, version, tuple(devices))
    except WorkerError:
        raise
    except socket.timeout:
        raise WorkerBusy(f"worker {endpoint} stopped answering within {timeout:g} s") from None
    except (OSError, ValueError, struct.error) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise WorkerError(f"worker {endpoint} answered wrongly ({why})") from None


def reachable(endpoint: str, timeout: float = 0.5) -> bool:
    """A bare TCP connect: does anything listen there? (After an engine host died, to name the
    worker that went away.)"""
    host, port = split(endpoint)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False
