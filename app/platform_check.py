"""Before Qt starts on Linux/X11: are the system libraries Qt's xcb platform plugin needs there?

When one is missing Qt only prints "Could not load the Qt platform plugin "xcb"" and aborts. We
ask `ldd` about PySide6's libqxcb.so first (about 20 ms) and, when something is missing, print one
line per library plus the apt line that installs them, then exit 2. Standard library only: this
runs before PySide6 is imported.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Library file -> Debian/Ubuntu package. What a minimal install lacks most often comes first.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found\s*$", re.MULTILINE)


def missing_from_ldd(ldd_output: str) -> list[str]:
    """Library names `ldd` could not resolve, in its order, each once."""
    seen: list[str] = []
    for name in _NOT_FOUND.findall(ldd_output):
        if name not in seen:
            seen.append(name)
    return seen


def install_line(missing: list[str]) -> str:
    """The apt command that installs what is missing (package names, each once)."""
    packages: list[str] = []
    for lib in missing:
        pkg = DEBIAN_PACKAGES.get(lib) or lib
        if pkg not in packages:
            packages.append(pkg)
    return "sudo apt install " + " ".join(packages)


def report(missing: list[str]) -> str:
    """What the user reads: one line per missing library, then the install line."""
    lines = ["Quantdesk cannot open its window: Qt's X11 (xcb) platform plugin needs system "
             "libraries that are missing:"]
    for lib in missing:
        pkg = DEBIAN_PACKAGES.get(lib)
        lines.append(f"  missing: {lib}" + (f"  (package {pkg})" if pkg else ""))
    lines.append(f"Install them (Debian/Ubuntu): {install_line(missing)}")
    lines.append("Other distributions name the packages differently; or run without a window "
                 "with QT_QPA_PLATFORM=offscreen.")
    return "\n".join(lines)


def xcb_plugin() -> Path | None:
    """PySide6's libqxcb.so, located without importing PySide6."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.is_file() else None


def will_use_xcb(env=None, platform: str | None = None, qt_args=()) -> bool:
    """True when Qt is about to load the xcb plugin: Linux, a DISPLAY, and no other platform
    chosen (QT_QPA_PLATFORM or -platform). Wayland sessions start xcb only when told to."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or not env.get("DISPLAY"):
        return False
    qt_args = list(qt_args)
    if "-platform" in qt_args:
        i = qt_args.index("-platform")
        chosen = qt_args[i + 1] if i + 1 < len(qt_args) else ""
    else:
        chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def missing_xcb_libraries(plugin: Path | None = None, run=subprocess.run) -> list[str]:
    """What ldd says the xcb plugin lacks; [] when all is there or ldd/the plugin is absent."""
    plugin = plugin or xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []
    try:
        out = run([ldd, str(plugin)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return missing_from_ldd(out.stdout + out.stderr)


def check_platform(qt_args=(), stream=None) -> int | None:
    """None when Qt may start; 2 (after printing the report) when the xcb plugin cannot load."""
    if not will_use_xcb(qt_args=qt_args):
        return None
    missing = missing_xcb_libraries()
    if not missing:
        return None
    print(report(missing), file=stream or sys.stderr, flush=True)
    return 2
