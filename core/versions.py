"""What Quantdesk is made of, for Help › About and bug reports: our version, Python, Qt binding,
llama-cpp-python and the llama.cpp build it carries (its system info line and GPU backend).

llama_cpp is never imported in the calling process (loading libllama initialises GPU backends
and takes VRAM): its system info comes from a short child process, like core.hardware's probe.
Call `versions()` off the GUI thread (the child takes about a second).
"""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

_SYSTEM_INFO = ("import llama_cpp; "
                "print(llama_cpp.llama_print_system_info().decode('utf-8', 'replace'))")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def llama_system_info(timeout: float = 60.0) -> str | None:
    """llama.cpp's system info line (CPU features, GPU backends built in), or None."""
    if getattr(sys, "frozen", False):   # a frozen build's executable is the app, not Python
        return None
    try:
        out = subprocess.run([sys.executable, "-c", _SYSTEM_INFO], capture_output=True, text=True,
                             timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and text else None


def versions(probe_llama: bool = True) -> dict[str, str]:
    """{what: version} in the order About shows them; "not installed" where a part is missing."""
    from quantdesk.core.hardware import _backend_from_libs, _llama_lib_dir
    out = {
        "Quantdesk": package_version("quantdesk") or "development checkout",
        "Python": f"{platform.python_version()} ({platform.system()} {platform.machine()})",
        "PySide6 / Qt": package_version("PySide6") or package_version("PySide6-Essentials")
        or "not installed",
        "llama-cpp-python": package_version("llama_cpp_python") or "not installed",
        "llama.cpp GPU backend": _backend_from_libs(_llama_lib_dir()),
        "huggingface_hub": package_version("huggingface_hub") or "not installed",
        "gguf": package_version("gguf") or "not installed",
        "numba": package_version("numba") or "not installed",
    }
    if probe_llama and out["llama-cpp-python"] != "not installed":
        out["llama.cpp build"] = llama_system_info() or "unavailable"
    return out
