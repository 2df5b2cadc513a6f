"""Raster icons made from resources/quantdesk.svg at build time (no binary icons in the repo).

    python packaging/icons.py OUT_DIR [--ico] [--iconset]

writes OUT_DIR/hicolor/SIZExSIZE/apps/quantdesk.png (Linux), and with --ico OUT_DIR/quantdesk.ico
(Windows), with --iconset OUT_DIR/quantdesk.iconset/ (macOS: `iconutil -c icns` turns it into
.icns). Rendering uses Qt's SVG renderer, already a dependency, so every OS makes the same icons.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SVG = Path(__file__).resolve().parent.parent / "resources" / "quantdesk.svg"
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# iconutil's names: icon_16x16.png, icon_16x16@2x.png (32 px), ... icon_512x512@2x.png
ICONSET = [(s, f"icon_{s}x{s}.png") for s in (16, 32, 128, 256, 512)] + \
          [(2 * s, f"icon_{s}x{s}@2x.png") for s in (16, 32, 128, 256, 512)]


def _renderer():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtSvg import QSvgRenderer
    QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"icons: {SVG} is not a valid SVG")
    return renderer


def _image(renderer, size: int):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def _save(image, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path), fmt):
        raise SystemExit(f"icons: could not write {path}")


def make_icons(out: Path, *, ico: bool = False, iconset: bool = False) -> list[Path]:
    renderer = _renderer()
    written = []
    for size in HICOLOR_SIZES:
        path = out / "hicolor" / f"{size}x{size}" / "apps" / "quantdesk.png"
        _save(_image(renderer, size), path, "PNG")
        written.append(path)
    if ico:
        written.append(_write_ico(out / "quantdesk.ico", [_image(renderer, s) for s in ICO_SIZES]))
    if iconset:
        for size, name in ICONSET:
            _save(_image(renderer, size), out / "quantdesk.iconset" / name, "PNG")
            written.append(out / "quantdesk.iconset" / name)
    return written


def _write_ico(path: Path, images) -> Path:
    """A multi-size .ico with PNG entries (Windows Vista+ reads them; Qt's writer keeps one size)."""
    import struct
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    blobs = []
    for image in images:
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buf, "PNG")
        blobs.append((image.width(), bytes(data.data())))
    header = struct.pack("<HHH", 0, 1, len(blobs))
    offset = len(header) + 16 * len(blobs)
    entries, payload = b"", b""
    for size, blob in blobs:
        dim = 0 if size >= 256 else size  # 0 means 256 in the ICO directory
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(blob), offset + len(payload))
        payload += blob
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + entries + payload)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--ico", action="store_true", help="also write quantdesk.ico")
    parser.add_argument("--iconset", action="store_true", help="also write quantdesk.iconset/")
    args = parser.parse_args(argv)
    for path in make_icons(args.out, ico=args.ico, iconset=args.iconset):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
