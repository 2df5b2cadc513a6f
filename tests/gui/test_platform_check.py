"""The xcb pre-flight check (app/platform_check.py): missing system libraries named with the
apt line instead of Qt's abort; offscreen and Wayland starts are left alone."""
from __future__ import annotations

import ctypes
import io
import subprocess

import pytest

from quantdesk.app import platform_check as pc

LDD_MINIMAL = """\
\tlinux-vdso.so.1 (0x00007ffd6c3f2000)
\tlibQt6XcbQpa.so.6 => /opt/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f0a1c000000)
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f0a1bf00000)
\tlibsomething-new.so.7 => not found
"""


def test_missing_libraries_from_ldd_output():
    missing = pc.missing_from_ldd(LDD_MINIMAL)
    assert missing == ["libxkbcommon-x11.so.0", "libxcb-cursor.so.0", "libxcb-icccm.so.4",
                       "libxcb-keysyms.so.1", "libsomething-new.so.7"]
    assert pc.install_line(missing) == ("sudo apt install libxkbcommon-x11-0 libxcb-cursor0 "
                                        "libxcb-icccm4 libxcb-keysyms1 libsomething-new.so.7")
    text = pc.report(missing)
    lines = text.splitlines()
    assert sum(line.startswith("  missing: ") for line in lines) == 5
    assert "  missing: libxcb-icccm.so.4  (package libxcb-icccm4)" in lines
    assert "sudo apt install libxkbcommon-x11-0" in text
    assert pc.missing_from_ldd("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []


def test_when_the_xcb_plugin_is_about_to_load():
    x11 = {"DISPLAY": ":0"}
    assert pc.will_use_xcb(x11, "linux")
    assert pc.will_use_xcb({**x11, "QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not pc.will_use_xcb({**x11, "QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not pc.will_use_xcb(x11, "linux", ["-platform", "offscreen"])
    assert pc.will_use_xcb({**x11, "QT_QPA_PLATFORM": "offscreen"}, "linux", ["-platform", "xcb"])
    assert not pc.will_use_xcb({}, "linux")                              # no X display at all
    assert not pc.will_use_xcb({**x11, "WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not pc.will_use_xcb(x11, "darwin") and not pc.will_use_xcb(x11, "win32")


def test_check_runs_ldd_on_pyside6_plugin(monkeypatch):
    plugin = pc.xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    seen = []

    def fake_run(cmd, **kw):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, LDD_MINIMAL, "")
    assert pc.missing_xcb_libraries(plugin, run=fake_run)[0] == "libxkbcommon-x11.so.0"
    assert seen[0][0].endswith("ldd") and seen[0][1] == str(plugin)
    # The real ldd on this machine (which may lack some, as a minimal server does): every library
    # named is one the dynamic loader cannot open, and every one ldd cannot find is named.
    missing = pc.missing_xcb_libraries(plugin)
    for name in missing:
        with pytest.raises(OSError):
            ctypes.CDLL(name)
    ldd = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True).stdout
    not_found = {line.split("=>")[0].strip() for line in ldd.splitlines() if "not found" in line}
    assert set(missing) == not_found


def test_main_exits_2_with_the_report_before_qt_starts(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(pc, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4"])
    from quantdesk.app.main import main
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "missing: libxcb-icccm.so.4" in err and "sudo apt install libxcb-icccm4" in err


def test_offscreen_start_skips_the_check(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(pc, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4"])
    assert pc.check_platform([], stream=io.StringIO()) is None
