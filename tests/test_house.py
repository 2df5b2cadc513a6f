"""House rules that keep the tree honest: import contracts (import-linter), packages are listed."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    """pyproject.toml's [tool.importlinter] contracts: core and kernels never import Qt or app,
    kernels never import core, app never imports llama_cpp nor the engine host directly."""
    import subprocess
    import sys
    run = ("import sys; from importlinter.cli import lint_imports; "
           f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True))")
    proc = subprocess.run([sys.executable, "-c", run], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for folder in ("app", "core", "kernels"):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            found.add(".".join(("quantdesk", *rel)))
    assert found == listed, {"missing": sorted(found - listed), "stale": sorted(listed - found)}
