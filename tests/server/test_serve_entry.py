"""The `serve` door of both entries: the source tree's CLI and the frozen build's entry script
(packaging/frozen/quantdesk_cli.py, which PyInstaller freezes as `quantdesk`)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from quantdesk.core.cli import build_parser

FROZEN_ENTRY = Path(__file__).parents[2] / "packaging" / "frozen" / "quantdesk_cli.py"


def test_the_cli_dispatches_serve_with_its_options():
    from quantdesk.core.cli import serve_cmd
    args = build_parser().parse_args(["serve", "--port", "9999", "--memory-budget", "2G",
                                      "--max-models", "2"])
    assert args.func is serve_cmd.run
    assert (args.port, args.memory_budget, args.max_models) == (9999, 2 << 30, 2)
    assert build_parser().parse_args(["serve"]).memory_budget == "auto"
    assert build_parser().parse_args(["serve", "--memory-budget", "none"]).memory_budget is None


def test_the_frozen_entry_script_runs_serve(tmp_path):
    # The script as PyInstaller runs it (__main__, freeze_support first): serve's own help.
    r = subprocess.run([sys.executable, str(FROZEN_ENTRY), "serve", "--help"],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "QUANTDESK_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "--memory-budget" in r.stdout and "--api-key" in r.stdout
    bad = subprocess.run([sys.executable, str(FROZEN_ENTRY), "serve", "--host", "0.0.0.0"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QUANTDESK_HOME": str(tmp_path),
                              "QUANTDESK_API_KEY": ""})
    assert bad.returncode == 2 and "give an API key" in bad.stderr
