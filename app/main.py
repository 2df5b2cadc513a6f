"""Entry point of the desktop app (`quantdesk-gui [MODEL.gguf ...]`, `python -m quantdesk.app.main`).

Paths on the command line are opened like a drop (that is what the OS file association calls).
One window per user and data folder: when one runs already, this launch hands it the paths over a
local socket and exits 0 (app/single_instance.py).
Only Qt and our light modules load before the window shows; llama.cpp lives in the engine's child
process, markdown/Pygments load on the first rendered message.
QUANTDESK_STARTUP_PROBE=1 prints the time from process start to the window's first show and exits.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# Must not be imported before the window shows (the startup probe reports any that were).
HEAVY_MODULES = ("llama_cpp", "numba", "huggingface_hub", "markdown", "pygments", "numpy")


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="quantdesk-gui", description="Quantdesk desktop app")
    parser.add_argument("models", nargs="*", help="GGUF files to open")
    return parser.parse_known_args(argv)  # the rest (e.g. -platform offscreen) is Qt's


def _since_process_start_ms() -> float:
    """Milliseconds since this process started (Linux: /proc, 10 ms ticks; else psutil)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return (uptime - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil  # probe only
        return (time.time() - psutil.Process().create_time()) * 1000


def _single_instance(app, paths: list[str]):
    """(InstanceServer, FileOpenFilter) when this launch is the first; else the exit status
    after handing `paths` to the running window (0, or 1 when it never answered)."""
    from .single_instance import FileOpenFilter, HandOver, InstanceServer, hand_over
    for _attempt in (1, 2):   # twice: another launch may become the first in between
        outcome = hand_over(paths)
        if outcome == HandOver.DONE:
            return 0
        if outcome == HandOver.NO_ANSWER:
            print("quantdesk-gui: Quantdesk is running but did not answer; try again",
                  file=sys.stderr)
            return 1
        server = InstanceServer(parent=app)
        if server.listen():
            file_open = FileOpenFilter(app)
            app.installEventFilter(file_open)   # before the event loop: launch-time events too
            return server, file_open
        server.deleteLater()
    print("quantdesk-gui: cannot reach the running Quantdesk nor start one", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    import multiprocessing
    multiprocessing.freeze_support()  # frozen builds: the engine host is a spawned child of this
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--self-test"]:  # smoke test of an installed build: app/self_test.py
        from .self_test import main as self_test
        return self_test(argv[1:])
    args, qt_args = _parse(argv)
    from .platform_check import check_platform
    if (code := check_platform(qt_args)) is not None:   # Qt would abort with a generic message
        return code
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from quantdesk.core.settings import load_settings

    from .main_window import MainWindow
    from .resources import icon_path
    from .theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("Quantdesk")
    app.setOrganizationName("Quantdesk")
    app.setDesktopFileName("quantdesk")
    app.setStyle("Fusion")
    app.setWindowIcon(QIcon(str(icon_path())))
    instance = _single_instance(app, [os.path.abspath(p) for p in args.models])
    if isinstance(instance, int):   # another Quantdesk of this user took the files
        return instance
    server, file_open = instance
    apply_theme(load_settings().theme)   # light, dark or the system's (and follows it)
    window = MainWindow()
    server.files_received.connect(window.open_from_elsewhere)
    file_open.files_received.connect(window.open_from_elsewhere)
    window.show()
    heavy = [m for m in HEAVY_MODULES if m in sys.modules]  # before any worker has started
    if args.models:
        QTimer.singleShot(0, lambda: window.open_paths(args.models))
    if os.environ.get("QUANTDESK_STARTUP_PROBE"):
        def probe():
            print(f"startup: window shown after {_since_process_start_ms():.0f} ms "
                  f"(visible={window.isVisible()}, heavy modules loaded: {heavy or 'none'})",
                  flush=True)
            window.close()
            app.quit()
        QTimer.singleShot(0, probe)
    code = app.exec()
    server.close()
    if window.chat_holder.page is not None:
        window.chat_holder.page.store.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
