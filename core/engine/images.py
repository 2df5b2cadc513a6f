"""Images in chat messages, as the doors send them and as the engine host gets them.

A door's message `content` is a string, or a list of parts (OpenAI's shape, plus two local forms):
    {"type": "text", "text": "..."}
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}   (or the url alone)
    {"type": "image", "path": "/local/file.png"}     the CLI's --image; never built from a request
    {"type": "image", "data": b"..."}                encoded bytes (the server's Anthropic blocks)
The host gets text with one MEDIA_MARKER where each image goes and the encoded images in order:
    {"role": ..., "content": "Describe\\n<__media__>", "images": [b"\\x89PNG..."]}
Only data: URLs are read: Quantdesk never goes online for a request, and a request never names a
file on this machine. Decoding (PNG, JPEG, BMP, GIF, ...) is llama.cpp's, in the host.
"""
from __future__ import annotations

import base64
import binascii
import os

from .types import InvalidRequestError

MEDIA_MARKER = "<__media__>"     # libmtmd's mtmd_default_marker(); the host checks they agree
MAX_IMAGE_BYTES = 32 << 20       # one encoded image; larger is refused before it is sent
# pixels of one image: llama.cpp decodes the whole image before resizing it, so a small file
# that declares 20000 x 20000 would take the host's memory (RGB: 3 bytes a pixel)
MAX_IMAGE_PIXELS = 64 << 20


def has_images(content) -> bool:
    return isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") in ("image", "image_url") for p in content)


def _data_url(url: str, where: str) -> bytes:
    if url.startswith(("http://", "https://")):
        raise InvalidRequestError(f"{where}: image URLs are not fetched (Quantdesk does not go "
                                  f"online for a request); send the image as a data: URL")
    if not url.startswith("data:"):
        raise InvalidRequestError(f"{where}: only data: URLs are read (data:image/png;base64,...)")
    head, sep, body = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidRequestError(f"{where}: the data: URL is not base64 (data:image/png;base64,...)")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{where}: the data: URL's base64 is not valid") from None


def _file(path: str, where: str) -> bytes:
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise InvalidRequestError(f"{where}: {path}: no such file")
    if os.path.getsize(path) > MAX_IMAGE_BYTES:
        raise InvalidRequestError(f"{where}: {path} is larger than {MAX_IMAGE_BYTES >> 20} MB")
    with open(path, "rb") as f:
        return f.read()


def image_bytes(part: dict, where: str) -> bytes:
    """The encoded image of one content part. Raises InvalidRequestError (one line)."""
    if part.get("type") == "image_url":
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        if not isinstance(url, str) or not url:
            raise InvalidRequestError(f"{where}: image_url has no url")
        data = _data_url(url.strip(), where)
    elif part.get("path") is not None:
        data = _file(part["path"], where)
    elif isinstance(part.get("data"), (bytes, bytearray)):
        data = bytes(part["data"])
    else:
        raise InvalidRequestError(f"{where}: an image part needs a path or data")
    if not data:
        raise InvalidRequestError(f"{where}: the image is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidRequestError(f"{where}: the image is larger than {MAX_IMAGE_BYTES >> 20} MB")
    size = image_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise InvalidRequestError(f"{where}: the image is {size[0]} x {size[1]} pixels; at most "
                                  f"{MAX_IMAGE_PIXELS >> 20} megapixels are read")
    return data


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) a PNG, GIF, BMP or JPEG file declares in its header; None for another
    format or a header too short to say (llama.cpp's decoder judges those)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        return (abs(int.from_bytes(data[18:22], "little", signed=True)),
                abs(int.from_bytes(data[22:26], "little", signed=True)))
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame size of a JPEG's first start-of-frame marker (SOF0..SOF15 but DHT, JPG, DAC)."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:            # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:   # no length
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    return None


def host_content(content, first_image: int = 1) -> tuple[str, list[bytes]]:
    """(text with a MEDIA_MARKER per image, the images' bytes) of a door's message content.
    Text parts and images are joined by newlines in their order. Images are numbered from
    `first_image` in messages (the conversation's count) for the one-line errors."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return str(content), []
    pieces: list[str] = []
    images: list[bytes] = []
    for part in content:
        if isinstance(part, str):
            pieces.append(part)
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            pieces.append(str(part.get("text") or ""))
        elif kind in ("image", "image_url"):
            images.append(image_bytes(part, f"image {first_image + len(images)}"))
            pieces.append(MEDIA_MARKER)
        else:
            raise InvalidRequestError(f"content of type {kind!r} is not supported "
                                      f"(text and images only)")
    return "\n".join(p for p in pieces if p), images
