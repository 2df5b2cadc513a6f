"""Vision projectors (mmproj GGUF files): finding the one that belongs to a model, and checking a
pair before llama.cpp sees it (libmtmd refuses a mismatched pair only after loading both, and
what it says goes to the log, not to the user).

A projector fits a language model when its clip.vision.projection_dim (the width of what it hands
the model) equals the model's {arch}.embedding_length. Reads GGUF headers only (core.gguf).
"""
from __future__ import annotations

import os
from pathlib import Path

AUTO = "auto"        # LoadRequest.mmproj: look beside the model


class ProjectorError(ValueError):
    """The projector cannot be used with this model. str(e) is one line."""


def _header(path: Path):
    from quantdesk.core.gguf import GGUFError, read_header
    try:
        return read_header(path).metadata
    except GGUFError as exc:
        raise ProjectorError(str(exc)) from None
    except OSError as exc:
        raise ProjectorError(f"{path.name}: {exc.strerror or exc}") from None


def model_width(model_path) -> int | None:
    """The language model's embedding width from its header (None: not stated)."""
    kv = _header(Path(model_path))
    arch = kv.get("general.architecture")
    value = kv.get(f"{arch}.embedding_length")
    return int(value) if isinstance(value, int) else None


def projection_dim(mmproj_path) -> int | None:
    """The width a vision projector hands the model; raises ProjectorError when the file is not
    a vision projector."""
    path = Path(mmproj_path)
    kv = _header(path)
    if kv.get("general.architecture") != "clip":
        raise ProjectorError(f"{path.name} is not a vision projector (mmproj)")
    if kv.get("clip.has_vision_encoder") is False:
        raise ProjectorError(f"{path.name} has no vision encoder (an audio-only projector?)")
    value = kv.get("clip.vision.projection_dim")
    return int(value) if isinstance(value, int) else None


def check_projector(model_path, mmproj_path) -> str:
    """The projector's absolute path when it fits the model; raises ProjectorError (one line)."""
    path = Path(os.path.abspath(os.path.expanduser(str(mmproj_path))))
    if not path.is_file():
        raise ProjectorError(f"{path}: no such file")
    dim, width = projection_dim(path), model_width(model_path)
    if dim is not None and width is not None and dim != width:
        raise ProjectorError(f"{path.name} does not fit {Path(model_path).name}: it projects "
                             f"images to width {dim}, the model's embeddings are {width} wide")
    return str(path)


def find_projector(model_path) -> str | None:
    """An mmproj*.gguf beside the model that fits it (as a hub download leaves them), or None.
    Several that fit: the one whose name shares the longest start with the model's."""
    model = Path(model_path)
    folder = model.parent
    try:
        names = sorted(n for n in os.listdir(folder)
                       if n.lower().endswith(".gguf") and "mmproj" in n.lower()
                       and n != model.name)
    except OSError:
        return None
    if not names:
        return None
    try:
        width = model_width(model)
    except ProjectorError:
        return None
    fits = []
    for name in names:
        try:
            dim = projection_dim(folder / name)
        except ProjectorError:
            continue
        if dim is not None and dim == width:
            fits.append(name)
    if not fits:
        return None
    stem = model.name.lower()
    fits.sort(key=lambda n: -len(os.path.commonprefix(
        [stem, n.lower().replace("mmproj-", "").replace("mmproj", "")])))
    return str(folder / fits[0])
