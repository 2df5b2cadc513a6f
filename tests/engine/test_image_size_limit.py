"""An image is judged by the pixels its header declares before it goes to the engine host
(llama.cpp decodes the whole image before resizing: a small file claiming 20000 x 20000 pixels
would take the host's memory)."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from quantdesk.core.engine.images import MAX_IMAGE_PIXELS, image_bytes, image_size
from quantdesk.core.engine.types import InvalidRequestError

from tiny_vision_chat import png_bytes


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


def _jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(9)
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def test_the_declared_size_is_read_from_each_format():
    real = png_bytes(np.zeros((24, 40, 3), np.uint8))
    assert image_size(real) == (40, 24)
    assert image_size(_jpeg_header(640, 480)) == (640, 480)
    assert image_size(b"GIF89a" + struct.pack("<HH", 33, 7) + bytes(8)) == (33, 7)
    bmp = b"BM" + bytes(16) + struct.pack("<ii", 12, -5) + bytes(30)
    assert image_size(bmp) == (12, 5)                    # top-down BMPs store a negative height
    assert image_size(b"RIFF\x00\x00\x00\x00WEBPVP8 ") is None   # llama.cpp judges the rest


@pytest.mark.parametrize("header", [_png_header(20000, 20000), _jpeg_header(9000, 8000)],
                         ids=["png", "jpeg"])
def test_an_image_declaring_too_many_pixels_is_refused_in_one_line(header):
    w, h = image_size(header)
    assert w * h > MAX_IMAGE_PIXELS
    with pytest.raises(InvalidRequestError) as info:
        image_bytes({"type": "image", "data": header}, "image 1")
    assert str(info.value) == (f"image 1: the image is {w} x {h} pixels; at most "
                               f"{MAX_IMAGE_PIXELS >> 20} megapixels are read")
    at_limit = _png_header(8192, 8192)                   # 64 megapixels: still read
    assert image_bytes({"type": "image", "data": at_limit}, "image 1") == at_limit
