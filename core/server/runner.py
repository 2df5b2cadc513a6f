"""Running the app under uvicorn: in the foreground until Ctrl-C (the CLI), or in a thread with
start()/stop() (the window). Either way, stopping ends the server's own engine hosts."""
from __future__ import annotations

import threading
import time

from .app import create_app
from .config import ServerConfig

GRACEFUL_S = 2.0   # streams still open at stop get this long, then are cut (their hosts cancel)


def _uvicorn_server(config: ServerConfig, manager=None, library=None, listeners=None):
    import uvicorn
    app = create_app(config, manager=manager, library=library, listeners=listeners)
    uv = uvicorn.Config(app, host=config.host, port=config.port, log_level="warning",
                        access_log=False, lifespan="on", timeout_graceful_shutdown=GRACEFUL_S)
    return uvicorn.Server(uv)


def serve_forever(config: ServerConfig, listeners=None, on_ready=None) -> bool:
    """Blocks until SIGINT/SIGTERM. False when the server could not start (port taken)."""
    server = _uvicorn_server(config, listeners=listeners)
    if on_ready is not None:
        _call_when_started(server, on_ready)
    try:
        server.run()
    except KeyboardInterrupt:   # uvicorn raises the Ctrl-C again once it has shut down
        pass
    except SystemExit:          # uvicorn's way of saying it could not bind (logged already)
        return False
    return server.started


def _call_when_started(server, fn) -> None:
    def wait() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            fn()
    threading.Thread(target=wait, name="server-ready", daemon=True).start()


class ServerThread:
    """The server in a background thread (the window's Server page)."""

    def __init__(self, config: ServerConfig, manager=None, library=None, listeners=None):
        self.config = config
        self._server = _uvicorn_server(config, manager, library, listeners)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Returns when the server listens; raises OSError when it could not start."""
        self._thread = threading.Thread(target=self._server.run, name="api-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._server.started:   # uvicorn exits its thread when the port is taken
            self.stop()
            raise OSError(f"the server could not listen on {self.config.host}:{self.config.port}")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
