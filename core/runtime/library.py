"""The library session: what every door (window, CLI, coming HTTP server) does with the local
models — list them, open files, forget them, take in a model Quantdesk wrote, and say which of
them fit this machine. Plain Python; call it off the GUI thread (the first listing may scan the
Hugging Face cache and inspect every file)."""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from quantdesk.core.gguf import GGUFError, ModelInfo
from quantdesk.core.library import Library, LibraryEntry

# Context length the fit verdicts assume: the chat page's default, so a verdict says what
# loading the model will do.
BADGE_CTX = 2048


@dataclass(frozen=True)
class Listing:
    entries: list[LibraryEntry]
    warning: str | None = None   # why library.json was set aside; given once, then None


@dataclass(frozen=True)
class Opened:
    """What opening one path did: `info` when the model was validated and added, else `error`."""
    path: str                    # as the user gave it (any part of a split model)
    info: ModelInfo | None
    error: str | None


@dataclass(frozen=True)
class DeletePlan:
    """What deleting a library model's file would do, decided before anything is touched.

    The rule: Quantdesk deletes on its own say-so only what it wrote (files in its models
    folder). A file elsewhere is deleted only when the user confirms that file explicitly
    (`needs_confirmation`). In the Hugging Face cache a snapshot file is a link to a blob that
    other revisions of the repo may share: the link goes, the blob only when no other snapshot
    links to it, and `note` says which."""
    files: tuple[Path, ...]      # what would be unlinked: model files, HF snapshot links, blobs
    size_bytes: int              # disk space given back (blobs kept for other snapshots: 0)
    where: str                   # "models-folder" | "hf-cache" | "elsewhere"
    needs_confirmation: bool     # outside our models folder: only on the user's explicit yes
    note: str                    # one line for the dialog
    allowed: bool = True         # False: nothing may be deleted (the starter model)


def _repo_folder(path: Path, cache: Path) -> Path | None:
    """models--org--name folder of a snapshot path inside the HF cache, else None."""
    try:
        rel = path.relative_to(cache)
    except ValueError:
        return None
    parts = rel.parts
    if len(parts) >= 4 and parts[0].startswith("models--") and parts[1] == "snapshots":
        return cache / parts[0]
    return None


def repo_id_of(path) -> str | None:
    """"org/name" of a file in the HF cache (models--org--name/snapshots/REV/...), else None."""
    for part in Path(str(path)).parts:
        if part.startswith("models--"):
            return part[len("models--"):].replace("--", "/")
    return None


def _hf_cache_deletion(files: list[Path], repo: Path) -> tuple[list[Path], int, int]:
    """(links and unshared blobs to unlink, bytes freed, blobs kept for other snapshots)."""
    targets = {os.path.realpath(f) for f in files}
    mine = {os.path.abspath(f) for f in files}
    shared = set()
    for other in (repo / "snapshots").rglob("*"):
        if os.path.abspath(other) not in mine and os.path.realpath(other) in targets:
            shared.add(os.path.realpath(other))
    out, freed = list(files), 0
    for f in files:
        blob = Path(os.path.realpath(f))
        if blob != f and blob.is_file() and str(blob) not in shared:
            out.append(blob)
            freed += blob.stat().st_size
        elif blob == f and f.is_file():   # no symlinks (Windows without developer mode): a copy
            freed += f.stat().st_size
    return out, freed, len(shared)


def plan_deletion(entry) -> DeletePlan:
    """How deleting `entry`'s file(s) (every part of a split model) would go; nothing is touched."""
    from quantdesk.core.gguf import split_parts
    from quantdesk.core.library import hf_cache_dir
    from quantdesk.core.paths import models_dir
    if entry.source == "starter":
        return DeletePlan((), 0, "elsewhere", True, "the starter model ships with Quantdesk", False)
    path = Path(entry.path)
    files = [p for p in (split_parts(path) or [path]) if os.path.lexists(p)]
    cache = hf_cache_dir()
    repo = _repo_folder(Path(os.path.abspath(path)), Path(os.path.abspath(cache)))
    if repo is not None:
        unlink, freed, kept = _hf_cache_deletion([Path(os.path.abspath(f)) for f in files], repo)
        note = (f"in the Hugging Face cache ({repo_id_of(path)}), which other tools read too")
        if kept:
            note += f"; {kept} file(s) stay because other snapshots of the repo use them"
        return DeletePlan(tuple(unlink), freed, "hf-cache", True, note)
    ours = Path(os.path.realpath(models_dir()))
    inside = all(ours in Path(os.path.realpath(f)).parents for f in files) and bool(files)
    size = sum(f.stat().st_size for f in files if f.is_file())
    if inside:
        return DeletePlan(tuple(files), size, "models-folder", False,
                          "in Quantdesk's models folder")
    return DeletePlan(tuple(files), size, "elsewhere", True,
                      f"outside Quantdesk's models folder ({path.parent})")


_NAME_KEY = re.compile(r"[^a-z0-9]+")


def display_names(entries) -> list[str]:
    """The name each entry shows in lists: its file name (split suffix dropped), followed by
    where it is from ("  ·  org/repo" or "  ·  folder") when another entry's name is the same
    or differs only in case and punctuation ("Model.Q4_K_M" vs "model-q4_k_m")."""
    names = [_file_name(e) for e in entries]
    keys = [_NAME_KEY.sub("", n.lower()) for n in names]
    out = []
    for name, key, entry in zip(names, keys, entries):
        if keys.count(key) > 1:
            path = entry.info.path if entry.info is not None else entry.path
            where = repo_id_of(path) or path.parent.name or str(path.parent)
            name = f"{name}  ·  {where}"
        out.append(name)
    # Still equal (the same name in two folders of the same name): the whole folder path.
    clashes = [i for i, name in enumerate(out) if out.count(name) > 1]
    for i in clashes:
        path = entries[i].info.path if entries[i].info is not None else entries[i].path
        out[i] = f"{names[i]}  ·  {path.parent}"
    return out


_SPLIT_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")


def _file_name(entry) -> str:
    path = entry.info.path if entry.info is not None else entry.path
    stem = path.name[:-5] if path.name.lower().endswith(".gguf") else path.name
    return _SPLIT_SUFFIX.sub("", stem)


class LibrarySession:
    """One Library shared by a door's calls. Library is thread-safe; the session builds it on
    first use so that constructing the session (on a GUI thread) costs nothing."""

    def __init__(self, data_dir: Path | None = None):
        self._data_dir = data_dir
        self._library: Library | None = None
        self._lock = threading.Lock()

    @property
    def library(self) -> Library:
        with self._lock:
            if self._library is None:
                self._library = Library(self._data_dir)
            return self._library

    def listing(self) -> Listing:
        """Every entry, and once, why the user's added models are gone (library.json unreadable)."""
        lib = self.library
        entries = lib.entries()
        warning, lib.warning = lib.warning, None
        return Listing(entries, warning)

    def open_paths(self, paths) -> list[Opened]:
        """Validate and add each file; a bad one is reported and changes nothing. The parts of a
        split model opened together give one result, for the first part given."""
        results, seen = [], set()
        for path in map(str, paths):
            try:
                entry = self.library.add(path)
            except GGUFError as exc:      # its message names the file
                results.append(Opened(path, None, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. library.json not writable: say so, go on
                results.append(Opened(path, None, f"{Path(path).name}: {exc}"))
                continue
            if str(entry.path) not in seen:
                seen.add(str(entry.path))
                results.append(Opened(path, entry.info, None))
        return results

    def add_written(self, path) -> None:
        """A model Quantdesk just wrote. Files in models_dir() are found by the library's own
        scan; one written elsewhere is added (remembered) so that it is listed too."""
        from quantdesk.core.paths import models_dir
        written = Path(str(path)).resolve()
        if models_dir().resolve() not in written.parents:
            self.library.add(written)

    def remove(self, path) -> None:
        """Forget a model (any part of a split one); the file stays on disk."""
        self.library.remove(path)

    def plan_deletion(self, path) -> DeletePlan:
        """What remove_and_delete(path) would unlink (see DeletePlan for the rule)."""
        return plan_deletion(self._entry_of(path))

    def remove_and_delete(self, path, *, confirmed: bool = False) -> DeletePlan:
        """Forget a model and delete its file(s) by plan_deletion's rule. A file outside the
        models folder (or in the HF cache) needs `confirmed=True`: the user's explicit yes for
        that file. Raises PermissionError (nothing changed) when not allowed."""
        plan = self.plan_deletion(path)
        if not plan.allowed:
            raise PermissionError(f"cannot delete: {plan.note}")
        if plan.needs_confirmation and not confirmed:
            raise PermissionError(f"not deleted without confirmation: {plan.note}")
        self.library.remove(path, hide=False)
        for f in plan.files:
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass
        return plan

    def _entry_of(self, path):
        """The listed entry for `path`, about `path` itself: two HF snapshots of one blob are
        one entry, but the user asked about the link they were shown."""
        given = Path(os.path.abspath(str(path)))
        target = os.path.realpath(given)
        for entry in self.library.entries():
            if os.path.abspath(entry.path) == str(given) or os.path.realpath(entry.path) == target:
                return LibraryEntry(given, entry.source, entry.info, entry.error)
        return LibraryEntry(given, "added", None, None)

    def fit_verdicts(self, entries, overrides: dict | None = None,
                     n_ctx: int = BADGE_CTX) -> dict:
        """{path string: Plan, or a one-line reason} for every readable entry, planned for this
        machine with the user's own figures (`overrides`: {"vram": bytes, "ram": bytes}).
        The first hardware probe may start a short child process."""
        from quantdesk.core.hardware import detect
        from quantdesk.core.planner import plan_for_model
        hw = detect().with_overrides(**(overrides or {}))
        out = {}
        for entry in entries:
            if entry.info is None:
                continue
            try:
                out[str(entry.path)] = plan_for_model(entry.info, n_ctx=n_ctx, hardware=hw,
                                                      lower_ctx=False)
            except Exception as exc:  # noqa: BLE001 - one odd file must not hide the others
                out[str(entry.path)] = str(exc).strip().split("\n")[0] or type(exc).__name__
        return out
