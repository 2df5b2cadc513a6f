"""The Linux packages around the one-folder app: a .deb (dpkg-deb) and an AppImage (appimagetool).

Both carry resources/quantdesk.desktop (the menu entry; it opens .gguf files), the shared-mime-info
file resources/quantdesk-gguf.xml (application/x-gguf: *.gguf, or "GGUF" at byte 0) and the
hicolor icons made by icons.py.

.deb layout:
    /opt/quantdesk/                          the one-folder app (quantdesk, quantdesk-gui, _internal/)
    /usr/bin/quantdesk, /usr/bin/quantdesk-gui   symlinks into /opt/quantdesk
    /usr/share/applications/quantdesk.desktop
    /usr/share/mime/packages/quantdesk.xml
    /usr/share/icons/hicolor/{SIZE}/apps/quantdesk.png, scalable/apps/quantdesk.svg
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
SUMMARY = "Run, quantize and chat with local LLMs (GGUF)"
DESCRIPTION = """\
 Quantdesk browses the Hugging Face hub, tells which quantization of a model fits
 this computer, quantizes models locally and chats with them through llama.cpp.
 Ships a small starter model (SmolLM2-135M-Instruct) to chat offline at once."""
# Qt's xcb/wayland platform plugins and OpenGL load these system libraries (PySide6 ships Qt
# itself). Ubuntu 24.04 renamed some with a t64 suffix: accept either.
DEPENDS = ("libc6 (>= 2.31), libgl1, libegl1, libfontconfig1, libfreetype6, libxkbcommon0, "
           "libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, libxcb-shape0, "
           "libdbus-1-3, libglib2.0-0 | libglib2.0-0t64")

# Refresh the caches the desktop reads, where the tools exist (dpkg triggers of
# shared-mime-info / desktop-file-utils do the same; a minimal system may lack them).
POSTINST = """\
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    if command -v update-mime-database >/dev/null 2>&1; then
        update-mime-database /usr/share/mime || true
    fi
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q /usr/share/applications || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t -f /usr/share/icons/hicolor || true
    fi
fi
exit 0
"""
POSTRM = POSTINST.replace('[ "$1" = "configure" ]', '[ "$1" = "remove" ] || [ "$1" = "purge" ]')


def deb_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def _install(src: Path, dst: Path, mode: int = 0o644) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    dst.chmod(mode)


def _desktop_integration(root: Path, icons: Path) -> None:
    """Desktop entry, MIME type and icons under root/usr/share."""
    share = root / "usr" / "share"
    _install(RESOURCES / "quantdesk.desktop", share / "applications" / "quantdesk.desktop")
    _install(RESOURCES / "quantdesk-gguf.xml", share / "mime" / "packages" / "quantdesk.xml")
    _install(RESOURCES / "quantdesk.svg", share / "icons" / "hicolor" / "scalable" / "apps" / "quantdesk.svg")
    for png in sorted((icons / "hicolor").glob("*/apps/quantdesk.png")):
        _install(png, share / "icons" / "hicolor" / png.relative_to(icons / "hicolor"))


def _normalise_modes(root: Path) -> None:
    """Directories 755, files 644, executables 755: whatever the build machine's umask was."""
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            executable = path.stat().st_mode & stat.S_IXUSR
            path.chmod(0o755 if executable else 0o644)


def build_deb(app: Path, icons: Path, dist: Path, version: str, compression: str = "xz") -> Path:
    arch = deb_arch()
    root = dist.parent / "build" / "deb" / "quantdesk"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(app, root / "opt" / "quantdesk", symlinks=True)
    bin_dir = root / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("quantdesk", "quantdesk-gui"):
        (bin_dir / name).symlink_to(f"/opt/quantdesk/{name}")
    _desktop_integration(root, icons)
    _normalise_modes(root)
    debian = root / "DEBIAN"
    debian.mkdir()
    size_kib = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024 + 1
    (debian / "control").write_text(
        f"Package: quantdesk\nVersion: {version}\nArchitecture: {arch}\n"
        f"Maintainer: Quantdesk developers <quantdesk@users.noreply.github.com>\n"
        f"Installed-Size: {size_kib}\nDepends: {DEPENDS}\nSection: science\nPriority: optional\n"
        f"Description: {SUMMARY}\n{DESCRIPTION}\n", encoding="utf-8")
    for name, text in (("postinst", POSTINST), ("postrm", POSTRM)):
        (debian / name).write_text(text, encoding="utf-8")
        (debian / name).chmod(0o755)
    out = dist / f"quantdesk_{version}_{arch}.deb"
    out.unlink(missing_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root),
                    str(out)], check=True)
    shutil.rmtree(root)  # a second copy of the app: half a gigabyte
    return out


APPRUN = """\
#!/bin/sh
# AppImage entry: the desktop app, or the command line with `--cli ARGS` / as quantdesk symlink.
HERE="$(dirname "$(readlink -f "$0")")"
if [ "$1" = "--cli" ]; then shift; exec "$HERE/usr/lib/quantdesk/quantdesk" "$@"; fi
case "${ARGV0##*/}" in quantdesk) exec "$HERE/usr/lib/quantdesk/quantdesk" "$@";; esac
exec "$HERE/usr/lib/quantdesk/quantdesk-gui" "$@"
"""


def build_appimage(app: Path, icons: Path, dist: Path, version: str, tool: str) -> Path:
    appdir = dist.parent / "build" / "Quantdesk.AppDir"
    shutil.rmtree(appdir, ignore_errors=True)
    shutil.copytree(app, appdir / "usr" / "lib" / "quantdesk", symlinks=True)
    _desktop_integration(appdir, icons)
    shutil.copyfile(RESOURCES / "quantdesk.desktop", appdir / "quantdesk.desktop")
    shutil.copyfile(icons / "hicolor" / "256x256" / "apps" / "quantdesk.png", appdir / "quantdesk.png")
    (appdir / ".DirIcon").symlink_to("quantdesk.png")
    (appdir / "AppRun").write_text(APPRUN, encoding="utf-8")
    (appdir / "AppRun").chmod(0o755)
    machine = os.uname().machine
    out = dist / f"Quantdesk-{version}-{machine}.AppImage"
    out.unlink(missing_ok=True)
    subprocess.run([tool, "--no-appstream", str(appdir), str(out)], check=True,
                   env=dict(os.environ, ARCH=machine))
    return out
