"""`quantdesk-gui --self-test [MODEL.gguf]`: a smoke test of an installed or frozen build.

Installers run it after building (and a user can run it when something looks wrong): it opens
the main window offscreen, loads the model (the bundled starter model when none is given) in the
engine's host process through core.runtime's ModelManager, generates a few tokens and exits 0. Any failure ends
it with one line `quantdesk self-test failed: REASON` and exit status 1.

It exercises exactly what a frozen build can get wrong: Qt plugins, resources, the spawned host
process (freeze_support), llama.cpp's shared libraries and the starter model's lookup.
The generation runs on the GUI thread on purpose: nothing is interactive here, and a plain
blocking sequence is the clearest test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def _fail(reason: str) -> int:
    print(f"quantdesk self-test failed: {' '.join(str(reason).split())}", file=sys.stderr,
          flush=True)
    return 1


def _show_window():
    """Build the real main window offscreen; returns (app, window, milliseconds to show)."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .resources import icon_path, stylesheet

    started = time.perf_counter()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Quantdesk")
    app.setOrganizationName("Quantdesk")
    icon = QIcon(str(icon_path()))
    if icon.pixmap(32, 32).isNull():  # the SVG icon needs Qt's SVG plugins in the bundle
        raise RuntimeError(f"the app icon {icon_path()} could not be drawn")
    app.setWindowIcon(icon)
    app.setStyleSheet(stylesheet())
    window = MainWindow()
    window.show()
    app.processEvents()
    return app, window, (time.perf_counter() - started) * 1000


def _generate(model: str, max_tokens: int) -> tuple[str, int, float]:
    """(reply text, tokens, load seconds) from the model, greedy so the run is repeatable."""
    from quantdesk.core.engine import SamplingParams, Token
    from quantdesk.core.runtime import LoadRequest, ModelManager

    models = ModelManager()
    try:
        host = models.load(LoadRequest(model, n_ctx=512, gpu_layers=0))
        pieces = [event.text for event in host.generate(
            [{"role": "user", "content": "Say hello in one short sentence."}],
            SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=1))
            if isinstance(event, Token)]
    finally:
        models.shutdown()
    return "".join(pieces), len(pieces), host.result.load_seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="quantdesk-gui --self-test")
    parser.add_argument("model", nargs="?", help="GGUF file (default: the bundled starter model)")
    parser.add_argument("--tokens", type=int, default=8, help="tokens to generate (default 8)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    model = args.model
    if model is None:
        from quantdesk.core.starter import starter_model_path
        found = starter_model_path()
        if found is None:
            return _fail("no model given and the starter model is not bundled or installed")
        model = str(found)
    if not os.path.isfile(model):
        return _fail(f"{model}: no such file")

    try:
        app, window, shown_ms = _show_window()
    except Exception as exc:  # any Qt/plugin/resource problem is the answer we are after
        return _fail(f"the window could not be built: {type(exc).__name__}: {exc}")
    try:
        if not window.isVisible():
            return _fail("the main window did not show")
        try:
            text, n_tokens, load_s = _generate(model, max(1, args.tokens))
        except Exception as exc:
            return _fail(f"{os.path.basename(model)}: {exc}")
        if n_tokens == 0 or not text.strip():
            return _fail(f"{os.path.basename(model)} loaded but generated no text")
        print(f"quantdesk self-test passed: window shown in {shown_ms:.0f} ms, "
              f"{os.path.basename(model)} loaded in {load_s:.2f} s, {n_tokens} tokens: "
              f"{text.strip()!r}", flush=True)
        return 0
    finally:
        window.close()   # its closeEvent stops the window's own workers and engine
        app.processEvents()
