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
    return data


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
