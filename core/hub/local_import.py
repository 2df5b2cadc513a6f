"""GGUF models other apps already downloaded: LM Studio, Ollama, and any folder the user adds.

Nothing is copied or moved; we return paths. The Library (core/library.py) lists them.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"


@dataclass
class LocalModel:
    name: str            # what to show: "publisher/repo/file", "llama3.2:1b", a file stem
    path: Path           # the (first) GGUF file
    source: str          # "lmstudio" | "ollama" | "folder"
    size_bytes: int      # all parts together
    parts: int = 1

    def to_json(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _gguf_files(root: Path):
    """First parts of GGUF models under root (split parts 2..n and vision projectors skipped)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in sorted(filenames):
            if not name.lower().endswith(".gguf") or "mmproj" in name.lower():
                continue
            m = _SPLIT.search(name)
            if m and int(m[1]) != 1:
                continue
            path = Path(dirpath) / name
            if not is_gguf(path):
                continue
            parts = [path]
            if m:
                stem = name[:m.start()]
                parts = [Path(dirpath) / f"{stem}-{k:05d}-of-{m[2]}.gguf" for k in range(1, int(m[2]) + 1)]
                parts = [p for p in parts if p.exists()]
            yield path, parts


def folder_models(root: str | Path, source: str = "folder") -> list[LocalModel]:
    root = Path(root).expanduser()
    out = []
    if not root.is_dir():
        return out
    for path, parts in _gguf_files(root):
        rel = path.relative_to(root).as_posix()
        name = _SPLIT.sub("", rel) if len(parts) > 1 else rel[:-5]
        out.append(LocalModel(name, path, source, sum(p.stat().st_size for p in parts), len(parts)))
    return out


def lmstudio_dirs(home: Path | None = None) -> list[Path]:
    home = Path(home or Path.home())
    dirs = [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    try:  # LM Studio lets the user move its models folder; it records where in settings.json
        settings = json.loads((home / ".lmstudio" / "settings.json").read_text())
        if settings.get("downloadsFolder"):
            dirs.insert(0, Path(settings["downloadsFolder"]).expanduser())
    except (OSError, ValueError, AttributeError):
        pass
    return [d for i, d in enumerate(dirs) if d.is_dir() and d not in dirs[:i]]


def lmstudio_models(home: Path | None = None) -> list[LocalModel]:
    return [m for d in lmstudio_dirs(home) for m in folder_models(d, "lmstudio")]


def ollama_dir(home: Path | None = None) -> Path | None:
    if os.environ.get("OLLAMA_MODELS"):
        candidates = [Path(os.environ["OLLAMA_MODELS"]).expanduser()]
    else:
        candidates = [Path(home or Path.home()) / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]
    return next((c for c in candidates if (c / "manifests").is_dir()), None)


def ollama_models(home: Path | None = None) -> list[LocalModel]:
    """Ollama keeps GGUF weights as content-addressed blobs; each manifest names its model layer."""
    root = ollama_dir(home)
    if root is None:
        return []
    out = []
    manifests = root / "manifests"
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        try:
            data = json.loads(manifest.read_text())
            layers = data.get("layers") or []
        except (OSError, ValueError, AttributeError):
            continue
        layer = next((l for l in layers if isinstance(l, dict) and l.get("mediaType") == OLLAMA_MODEL_LAYER), None)
        if layer is None or not str(layer.get("digest", "")).startswith("sha256:"):
            continue
        blob = root / "blobs" / layer["digest"].replace(":", "-")
        if not is_gguf(blob):
            continue
        host, *path, tag = manifest.relative_to(manifests).parts
        if host == "registry.ollama.ai" and path[:1] == ["library"]:
            path = path[1:]
        elif host != "registry.ollama.ai":
            path = [host, *path]
        out.append(LocalModel(f"{'/'.join(path)}:{tag}", blob, "ollama", blob.stat().st_size))
    return out


def find_local_models(extra_folders=(), home: Path | None = None) -> list[LocalModel]:
    """Every GGUF from LM Studio, Ollama and the given folders, de-duplicated by real path."""
    found, seen = [], set()
    for model in [*lmstudio_models(home), *ollama_models(home), *(m for f in extra_folders for m in folder_models(f))]:
        key = os.path.realpath(model.path)
        if key not in seen:
            seen.add(key)
            found.append(model)
    return found
