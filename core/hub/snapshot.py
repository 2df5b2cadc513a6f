"""A safetensors repo's checkpoint, fetched into the huggingface_hub cache for local quantization.

    snapshot_job("org/Model")            -> fn(report, cancel) -> Snapshot (a core job: the window
                                            runs it through app/bridge.py, a CLI could call it)
    fetch_snapshot("org/Model", report=, cancel=)   the same, called directly
    local_snapshot("org/Model")          -> the cached folder if a fetch completed, else None

What is fetched: the root files a conversion reads (config, tokenizer files, generation config,
chat template, the safetensors index) and the weights (the shards the index names, else every
root *.safetensors), each through download.py: ranged, verified against the hub's sha256,
resumable. Everything comes from one commit (the one `main` pointed at when the fetch began).

Complete or not: files land in snapshots/<commit>/ one by one, as huggingface_hub lays them out,
but refs/<revision> is written only when every file is there. A cancelled or failed fetch
therefore leaves no snapshot that `local_snapshot` (or huggingface_hub resolving `main`) takes for
a checkpoint; the part of the file being fetched stays as blobs/<etag>.incomplete and the next
fetch resumes it by Range, skipping the files already complete.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from quantdesk.core.hub import download as dl
from quantdesk.core.hub.cache_layout import COMMIT_RE, check_request, inside, storage_folder
from quantdesk.core.hub.errors import DownloadCancelled, DownloadPaused, HubError, OfflineError
from quantdesk.core.text import quoted

INDEX = "model.safetensors.index.json"
# What a conversion reads beside the weights (core/convert: config, vocab, chat template).
SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer.model",
              "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
              "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json", INDEX,
              "quantize_config.json", "quant_config.json")   # GPTQ / AWQ settings of older exports
CoreJob = Callable[[Callable[[object], None], Any], Any]


@dataclass(frozen=True)
class SnapshotProgress:
    repo_id: str
    filename: str               # the file being fetched
    done_bytes: int             # over the whole checkpoint, files already cached included
    total_bytes: int
    files_done: int
    files_total: int
    speed_bps: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else 0.0


@dataclass(frozen=True)
class Snapshot:
    repo_id: str
    commit: str
    folder: Path                # snapshots/<commit>: an HF model folder the quantizer opens
    files: tuple[str, ...]
    fetched_bytes: int          # downloaded by this call (0: everything was cached)


def _weights(details, folder: Path) -> list[str]:
    """The shards to fetch: those the index names (a repo may also carry a consolidated copy
    of the same weights), else every root *.safetensors."""
    names = {f.name for f in details.files}
    index = folder / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            shards = sorted({v for v in weight_map.values() if isinstance(v, str)})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise HubError(f"{details.repo_id}: {INDEX} is not a valid safetensors index") from None
        missing = [s for s in shards if s not in names]
        if missing:
            raise HubError(f"{details.repo_id}: {INDEX} names {quoted(missing[0])}, "
                           "which the repo does not have")
        return shards
    return sorted(n for n in names if n.endswith(".safetensors") and "/" not in n)


def _write_ref(repo_id: str, revision: str, commit: str, cache: Path | None) -> None:
    """refs/<revision> -> commit: the mark of a complete checkpoint (written last, atomically)."""
    storage = storage_folder(repo_id, cache)
    ref = storage / "refs" / Path(*revision.split("/"))
    if not inside(storage.parent, ref):
        raise HubError(f"refusing to write a ref for revision {quoted(revision)}")
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(f"{ref.name}.{os.getpid()}.tmp")
    tmp.write_text(commit)
    os.replace(tmp, ref)


def local_snapshot(repo_id: str, revision: str = "main", cache: Path | None = None) -> Path | None:
    """The checkpoint folder of a completed fetch (refs/<revision> written and every weight file
    the folder names present), else None."""
    check_request(repo_id, "config.json", revision)
    storage = storage_folder(repo_id, cache)
    try:
        commit = (storage / "refs" / Path(*revision.split("/"))).read_text().strip()
    except OSError:
        return None
    folder = storage / "snapshots" / commit
    if not commit or not inside(storage.parent, folder) or not (folder / "config.json").is_file():
        return None
    try:
        from quantdesk.core.convert.safetensors import find_shards
        find_shards(folder)
    except Exception:  # noqa: BLE001 - any ConvertError: not a complete checkpoint
        return None
    return folder


class _Totals:
    """Bytes over the whole checkpoint, for one progress bar and one ETA."""

    def __init__(self, repo_id: str, sizes: dict[str, int], report):
        self.repo_id, self.sizes, self.report = repo_id, sizes, report
        self.total = sum(sizes.values())
        self.done_files: set[str] = set()
        self.fetched = 0
        self._speed = dl._Speed()

    def file_done(self, name: str) -> None:
        self.done_files.add(name)

    def emit(self, name: str, current: int) -> None:
        done = sum(self.sizes[n] for n in self.done_files) + (0 if name in self.done_files else current)
        bps = self._speed.add(done)
        eta = (self.total - done) / bps if bps else None
        self.report(SnapshotProgress(self.repo_id, name, done, self.total, len(self.done_files),
                                     len(self.sizes), bps, eta))


def _watch_cancel(cancel, control: dl.DownloadControl, finished: threading.Event) -> None:
    # The token has no callback: poll it, and pause the download (its partial file is kept and
    # its socket shut, so even a stalled read stops now rather than after the read timeout).
    while not finished.wait(0.1):
        if cancel.cancelled:
            control.pause()
            return


def fetch_snapshot(repo_id: str, revision: str = "main", *, cache: Path | None = None,
                   report: Callable[[SnapshotProgress], None] | None = None,
                   cancel=None) -> Snapshot:
    """Fetch (or resume, or find complete) the checkpoint of `repo_id` at `revision`.

    Raises DownloadCancelled when `cancel` is set (partial bytes kept for the next fetch),
    OfflineError (unless a completed fetch is cached: then that one is returned), GatedError,
    NotFoundError, NetworkError, DiskFullError, ChecksumError, HubError."""
    from quantdesk.core.hub.variants import repo_details
    report = report or (lambda _p: None)
    check_request(repo_id, "config.json", revision)
    try:
        details = repo_details(repo_id, revision)
    except OfflineError:
        folder = local_snapshot(repo_id, revision, cache)
        if folder is None:
            raise
        return Snapshot(repo_id, folder.name, folder, tuple(sorted(p.name for p in folder.iterdir())), 0)
    if not isinstance(details.sha, str) or not COMMIT_RE.fullmatch(details.sha):
        raise HubError(f"{repo_id}: the hub did not say which commit {quoted(revision)} is")
    snapshot = storage_folder(repo_id, cache) / "snapshots" / details.sha
    by_name = {f.name: f for f in details.files}
    if "config.json" not in by_name:
        raise HubError(f"{repo_id} has no config.json: not a checkpoint Quantdesk can quantize")
    side = [n for n in SIDE_FILES if n in by_name]
    # Weights are known for sure once the index is read; until then every root shard counts.
    guess = [n for n in by_name if n.endswith(".safetensors") and "/" not in n]
    if not guess:
        raise HubError(f"{repo_id} has no *.safetensors weights at its top level")
    sizes = {n: by_name[n].size or 0 for n in side + guess}
    totals = _Totals(repo_id, sizes, report)

    control, finished = dl.DownloadControl(), threading.Event()
    if cancel is not None:
        threading.Thread(target=_watch_cancel, args=(cancel, control, finished), daemon=True,
                         name=f"cancel watch {repo_id}").start()
    try:
        def fetch(name: str) -> Path:
            entry = by_name[name]
            last = {"t": 0.0}

            def progress(p: dl.Progress) -> None:
                now = time.monotonic()
                if p.state == "downloading" and now - last["t"] > 0.2:
                    last["t"] = now
                    totals.emit(name, p.done_bytes)
            check_request(repo_id, name, details.sha)
            if (snapshot / name).is_file():   # fetched before (this commit): no request at all
                totals.file_done(name)
                totals.emit(name, sizes.get(name, 0))
                return snapshot / name
            target = dl.resolve_target(repo_id, name, details.sha, cache)
            cached = target.pointer.exists() or target.blob.exists()
            before = dl.partial_bytes(target)
            path = dl.download_file(repo_id, name, revision=details.sha, sha256=entry.sha256,
                                    cache=cache, control=control, progress=progress, target=target)
            if not cached:
                totals.fetched += (target.size or 0) - before
            totals.file_done(name)
            totals.emit(name, sizes.get(name, 0))
            return path

        for name in side:
            fetch(name)
        weights = _weights(details, snapshot)
        for name in [n for n in guess if n not in weights]:   # not part of this checkpoint
            totals.sizes.pop(name, None)
        totals.total = sum(totals.sizes.values())
        for name in weights:
            fetch(name)
    except (DownloadPaused, DownloadCancelled):
        if cancel is not None and cancel.cancelled:
            raise DownloadCancelled(f"fetching {repo_id} was cancelled; what was downloaded is "
                                    "kept and the next fetch resumes it") from None
        raise
    finally:
        finished.set()
    _write_ref(repo_id, revision, details.sha, cache)   # complete: now it is a checkpoint
    return Snapshot(repo_id, details.sha, snapshot, tuple(side + weights), totals.fetched)


def snapshot_job(repo_id: str, revision: str = "main", cache: Path | None = None) -> CoreJob:
    """fetch_snapshot as a core job: report(SnapshotProgress); cancel stops it (bytes kept)."""
    def run(report, cancel) -> Snapshot:
        return fetch_snapshot(repo_id, revision, cache=cache, report=report, cancel=cancel)
    return run
