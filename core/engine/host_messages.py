"""Messages as the engine host gets them (the "generate" command's `messages`, host.py).

Only what a chat template reads goes over the pipe: role, text content, and the tool fields when
present; images in content parts become a marker per image in the text plus `images` (images.py).
"""
from __future__ import annotations

from .images import host_content


def host_message(message: dict, first_image: int = 1) -> dict:
    """A message as the host gets it: role and text content, and the tool fields only when
    present (templates test `'tool_calls' in message`); content parts with images become text
    with a marker per image plus `images` (images.py; InvalidRequestError for a bad one)."""
    text, images = host_content(message.get("content"), first_image)
    out = {"role": str(message["role"]), "content": text}
    if images:
        out["images"] = images
    for key in ("tool_calls", "tool_call_id", "name"):
        if message.get(key):
            out[key] = message[key]
    return out


def host_messages(messages: list[dict]) -> list[dict]:
    """Every message cleaned, images numbered across the conversation ("image 1", "image 2"...)."""
    out, n = [], 1
    for m in messages:
        out.append(host_message(m, n))
        n += len(out[-1].get("images", ()))
    return out
