"""A TCP listener that answers like a worker (or misbehaves), for probes without llama.cpp."""
from __future__ import annotations

import socket
import struct
import threading


class FakeWorker:
    """mode: "ok" (protocol 7, one device), "silent" (accepts, never answers: a busy worker),
    "old" (answers protocol 3), "garbage" (a wrong-size reply)."""

    def __init__(self, mode: str = "ok", free: int = 3 << 30, total: int = 8 << 30):
        self.mode, self.free, self.total = mode, free, total
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"127.0.0.1:{self.port}"
        self._held = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)
            if self.mode != "silent":
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn) -> None:
        def read(n):
            data = b""
            while len(data) < n:
                chunk = conn.recv(n - len(data))
                if not chunk:
                    raise ConnectionError
                data += chunk
            return data
        try:
            while True:
                cmd, size = struct.unpack("<BQ", read(9))
                read(size)
                if self.mode == "garbage":
                    conn.sendall(struct.pack("<Q", 3) + b"abc")
                elif cmd == 14:
                    major = 3 if self.mode == "old" else 7
                    conn.sendall(struct.pack("<Q", 28) + bytes([major, 0, 0, 0]) + bytes(24))
                elif cmd == 15:
                    conn.sendall(struct.pack("<QI", 4, 1))
                elif cmd == 11:
                    conn.sendall(struct.pack("<QQQ", 16, self.free, self.total))
        except (OSError, ConnectionError, struct.error):
            conn.close()

    def close(self) -> None:
        self.sock.close()
        for c in self._held:
            c.close()
