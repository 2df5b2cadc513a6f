"""PyInstaller runtime hook: runs in both frozen executables before their entry script.

* numba writes its JIT caches next to the source file or under NUMBA_CACHE_DIR; the install
  folder (/opt/quantdesk, Program Files, a signed .app) is read-only, so point it at the user's
  cache folder before numba is imported.
* numba-cuda takes over `numba.cuda` through a .pth file, and frozen apps read no .pth files:
  import its redirector by hand (when numba_cuda was bundled; otherwise it only warns).
* A windowed program on Windows starts with sys.stdout/sys.stderr set to None; code that
  flushes or writes them (the engine host routes them to its log) needs real files.
* core/hardware.py probes llama.cpp with `sys.executable -c CODE`; frozen, sys.executable is one
  of our programs, so emulate `python -c` here instead of starting a second window.
"""
import os
import sys

for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))

if "NUMBA_CACHE_DIR" not in os.environ:
    try:
        from platformdirs import user_cache_dir
        os.environ["NUMBA_CACHE_DIR"] = os.path.join(user_cache_dir("Quantdesk", "Quantdesk"),
                                                     "numba")
    except Exception:
        pass

try:
    import importlib.util
    if importlib.util.find_spec("numba_cuda") is not None:  # bundled only when the build has it
        import _numba_cuda_redirector  # noqa: F401
except ImportError:
    pass

# [-flags...] -c CODE, as multiprocessing and core/hardware.py call a Python interpreter.
if (len(sys.argv) >= 3 and sys.argv[-2] == "-c"
        and all(a.startswith("-") for a in sys.argv[1:-2])
        and not sys.argv[-1].startswith("from multiprocessing.")):  # freeze_support's own
    code = sys.argv[-1]
    sys.argv = ["-c"]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    sys.exit(0)
