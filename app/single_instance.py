"""One Quantdesk window per user: a second launch hands its files to the running one and exits.

Double-clicking a .gguf (or `quantdesk-gui FILE`) while Quantdesk runs used to start a second full
window on the same data folder, and the first went stale. Now the first window listens on a local
socket (QLocalServer: a Unix socket, a named pipe on Windows) whose name is derived from the user
and the data folder; a later launch connects, sends its paths as one JSON line, waits for "ok" and
exits 0. The running window opens the files and raises itself. macOS does not start a second
process at all: it sends the running app a QFileOpenEvent, caught by FileOpenFilter.

A crashed first instance leaves its socket file behind on Unix; nobody accepts on it, so the
connect fails at once and the new launch removes the file and becomes the first instance.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_MS = 1000     # a live instance accepts at once; a stale socket is refused at once
ANSWER_MS = 10000     # the running window may be busy for a moment (a page being built)
MAX_MESSAGE = 1 << 20


def server_name() -> str:
    """Per user and data folder (tests and portable setups with their own QUANTDESK_HOME get
    their own instance), short enough for any platform's socket or pipe name."""
    from quantdesk.core.paths import data_dir
    try:
        user = getpass.getuser()
    except (KeyError, OSError):   # no name for this uid (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    digest = hashlib.sha256(f"{user}\0{data_dir().resolve()}".encode()).hexdigest()[:16]
    return f"quantdesk-{digest}"


class HandOver:
    """What happened when a launch looked for a running instance."""
    NONE, DONE, NO_ANSWER = range(3)


def hand_over(paths: list[str], name: str | None = None) -> int:
    """Send `paths` (absolute) to a running instance. HandOver.NONE: nobody listens (start the
    window), DONE: the running window took them, NO_ANSWER: it accepted but never answered."""
    socket = QLocalSocket()
    socket.connectToServer(name or server_name())
    if not socket.waitForConnected(CONNECT_MS):
        return HandOver.NONE
    socket.write(json.dumps({"open": list(paths)}).encode("utf-8") + b"\n")
    socket.waitForBytesWritten(ANSWER_MS)
    answer = b""
    while not answer.endswith(b"\n") and socket.waitForReadyRead(ANSWER_MS):
        answer += bytes(socket.readAll().data())
    socket.disconnectFromServer()
    return HandOver.DONE if answer.startswith(b"ok") else HandOver.NO_ANSWER


class InstanceServer(QObject):
    """The first instance's end: emits `files_received(paths)` for every later launch."""
    files_received = Signal(list)

    def __init__(self, name: str | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name or server_name()
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> bool:
        """Start serving. False when another live instance serves the name (it started between
        our hand-over attempt and now); a stale socket file is removed and taken over."""
        if self.server.listen(self.name):
            return True
        probe = QLocalSocket()
        probe.connectToServer(self.name)
        if probe.waitForConnected(CONNECT_MS):   # alive: not ours to remove
            probe.disconnectFromServer()
            return False
        QLocalServer.removeServer(self.name)
        return self.server.listen(self.name)

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(self._read)
            socket.disconnected.connect(self._forget)

    def _read(self) -> None:
        socket = self.sender()
        data = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if len(data) > MAX_MESSAGE:   # not a launch of ours
            self._close(socket)
            return
        self._buffers[socket] = data
        if not data.endswith(b"\n"):
            return
        try:
            message = json.loads(data.decode("utf-8"))
            paths = [str(p) for p in message.get("open", []) if isinstance(p, str)]
        except (ValueError, UnicodeDecodeError, AttributeError):
            self._close(socket)
            return
        socket.write(b"ok\n")
        socket.flush()
        self._close(socket)
        self.files_received.emit(paths)

    def _close(self, socket) -> None:
        self._buffers.pop(socket, None)
        socket.disconnectFromServer()

    def _forget(self) -> None:
        socket = self.sender()
        self._buffers.pop(socket, None)
        socket.deleteLater()

    def close(self) -> None:
        self.server.close()


class FileOpenFilter(QObject):
    """macOS hands files to the running app as QFileOpenEvent (Finder double-click, Dock drop,
    `open -a Quantdesk FILE`); installed on the QApplication, it turns each into files_received."""
    files_received = Signal(list)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.FileOpen:
            path = event.file() or event.url().toLocalFile()
            if path:
                self.files_received.emit([path])
            return True
        return super().eventFilter(watched, event)
