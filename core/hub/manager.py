"""Download manager: several hub files at once, each pausable, resumable and cancellable, with a
task list that survives an app restart (partial files stay in the cache and resume by Range).

Plain threads, no Qt: `on_update(task)` is called from worker threads with a snapshot; the GUI
re-emits it as a queued signal. Task state is saved to `data_dir()/downloads.json` on every state
change (not on every progress tick).
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable

from quantdesk.core.hub import download as dl
from quantdesk.core.hub.cache_layout import partial_path
from quantdesk.core.hub.errors import DownloadCancelled, DownloadPaused, GatedError, HubError

ACTIVE = ("queued", "running")


@dataclass
class DownloadTask:
    id: str
    repo_id: str
    filename: str
    revision: str = "main"
    sha256: str | None = None
    state: str = "queued"            # queued | running | paused | done | failed | cancelled
    done_bytes: int = 0
    total_bytes: int | None = None
    speed_bps: float = 0.0
    eta_s: float | None = None
    phase: str = ""                  # connecting | downloading | verifying | done
    error: str | None = None         # one line, when failed
    needs_token: bool = False        # failed on a gated repo: ask the user for a token
    path: str | None = None          # the snapshot path, when done
    etag: str | None = None          # where the partial lives, known after the first HEAD
    commit: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def task_id(repo_id: str, filename: str, revision: str = "main") -> str:
    return f"{repo_id}@{revision}:{filename}"


class DownloadManager:
    def __init__(self, state_file: Path | None = None, *, cache: Path | None = None, max_parallel: int = 2,
                 on_update: Callable[[DownloadTask], None] | None = None):
        if state_file is None:
            from quantdesk.core.paths import data_dir
            state_file = data_dir() / "downloads.json"
        self.state_file, self.cache, self.on_update = Path(state_file), cache, on_update
        self._lock = threading.RLock()
        self._slots = threading.Semaphore(max_parallel)
        self._tasks: dict[str, DownloadTask] = {}
        self._controls: dict[str, dl.DownloadControl] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._save_lock = threading.Lock()
        self.warning: str | None = None
        self._load()

    # -- persistence -------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            saved = json.loads(self.state_file.read_text())
            known = {f.name for f in fields(DownloadTask)}
            tasks = [DownloadTask(**{k: v for k, v in item.items() if k in known})
                     for item in saved.get("tasks", [])]
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # An unreadable list must not keep Discover from starting: set it aside, start empty.
            self.warning = f"{self.state_file.name} could not be read ({exc}); its downloads are not listed"
            try:
                os.replace(self.state_file, self.state_file.with_name(self.state_file.name + ".unreadable"))
            except OSError:
                pass
            return
        for task in tasks:
            if task.state in ACTIVE:          # the app stopped while it ran: it is paused now
                task.state = "paused"
            task.speed_bps, task.eta_s = 0.0, None
            if task.state == "paused" and task.etag:
                partial = partial_path(task.repo_id, task.etag, self.cache)
                task.done_bytes = partial.stat().st_size if partial and partial.exists() else 0
            self._tasks[task.id] = task

    def _save(self) -> None:
        # Download threads save concurrently: one writer at a time, or two threads share the
        # temporary file and the second rename finds it gone.
        with self._save_lock:
            with self._lock:
                data = {"tasks": [t.to_json() for t in self._tasks.values()]}
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self.state_file)

    def _emit(self, task: DownloadTask, save: bool = False) -> None:
        if save:
            self._save()
        if self.on_update:
            self.on_update(replace(task))

    # -- public ------------------------------------------------------------------------------
    def tasks(self) -> list[DownloadTask]:
        with self._lock:
            return [replace(t) for t in self._tasks.values()]

    def get(self, tid: str) -> DownloadTask:
        with self._lock:
            return replace(self._tasks[tid])

    def add(self, repo_id: str, filename: str, *, revision: str = "main", sha256: str | None = None,
            size: int | None = None, start: bool = True) -> DownloadTask:
        tid = task_id(repo_id, filename, revision)
        with self._lock:
            task = self._tasks.get(tid)
            if task is None or task.state in ("cancelled", "failed", "done"):
                task = DownloadTask(tid, repo_id, filename, revision, sha256, total_bytes=size)
                self._tasks[tid] = task
        if start:
            self.resume(tid)
        return self.get(tid)

    def resume(self, tid: str) -> None:
        with self._lock:
            task = self._tasks[tid]
            if tid in self._threads and self._threads[tid].is_alive():
                return
            task.state, task.error, task.needs_token = "queued", None, False
            control = self._controls.setdefault(tid, dl.DownloadControl())
            control.reset()
            thread = threading.Thread(target=self._run, args=(tid, control), name=f"download {task.filename}",
                                      daemon=True)
            self._threads[tid] = thread
        self._emit(task, save=True)
        thread.start()

    def pause(self, tid: str) -> None:
        with self._lock:
            task = self._tasks[tid]
            control = self._controls.get(tid)
            if task.state in ACTIVE and control:
                control.pause()

    def cancel(self, tid: str) -> None:
        """Stop and delete the partial file. A paused task is cancelled at once."""
        with self._lock:
            task = self._tasks[tid]
            control = self._controls.get(tid)
            running = tid in self._threads and self._threads[tid].is_alive()
            if running and control:
                control.cancel()
                return
            if task.state in ("paused", "failed", "queued"):
                partial = partial_path(task.repo_id, task.etag, self.cache)
                if partial:   # a hand-edited downloads.json cannot point this unlink elsewhere
                    partial.unlink(missing_ok=True)
                task.state, task.done_bytes = "cancelled", 0
        self._emit(task, save=True)

    def remove(self, tid: str) -> None:
        """Forget a finished/cancelled/failed task (the downloaded file stays in the cache)."""
        with self._lock:
            if self._tasks[tid].state in ACTIVE:
                raise HubError("cannot remove a running download; pause or cancel it first")
            del self._tasks[tid]
        self._save()

    def wait(self, tid: str, timeout: float | None = None) -> DownloadTask:
        thread = self._threads.get(tid)
        if thread is not None:
            thread.join(timeout)
        return self.get(tid)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Pause everything (partial files are kept) and wait for the workers to stop."""
        for tid in list(self._threads):
            self.pause(tid)
        for thread in list(self._threads.values()):
            thread.join(timeout)
        self._save()

    # -- worker ------------------------------------------------------------------------------
    def _run(self, tid: str, control: dl.DownloadControl) -> None:
        with self._slots:
            with self._lock:
                task = self._tasks[tid]
                if control._cancel.is_set() or control._pause.is_set():
                    task.state = "cancelled" if control._cancel.is_set() else "paused"
                    stop_early = True
                else:
                    task.state, stop_early = "running", False
            if stop_early:
                self._emit(task, save=True)
                return
            self._emit(task, save=True)

            def progress(p: dl.Progress) -> None:
                with self._lock:
                    task.done_bytes, task.total_bytes = p.done_bytes, p.total_bytes
                    task.speed_bps, task.eta_s, task.phase = p.speed_bps, p.eta_s, p.state
                self._emit(task)

            try:
                target = dl.resolve_target(task.repo_id, task.filename, task.revision, self.cache)
                with self._lock:
                    task.etag, task.commit = target.etag, target.commit
                    task.total_bytes = target.size or task.total_bytes
                self._save()
                path = dl.download_file(task.repo_id, task.filename, revision=task.revision, sha256=task.sha256,
                                        cache=self.cache, control=control, progress=progress, target=target)
                final = ("done", None, str(path))
            except DownloadPaused:
                final = ("paused", None, None)
            except DownloadCancelled:
                final = ("cancelled", None, None)
            except HubError as exc:
                final = ("failed", str(exc), None)
                task.needs_token = isinstance(exc, GatedError)
            except Exception as exc:  # noqa: BLE001 - a worker must never die silently
                final = ("failed", f"download failed: {exc}".splitlines()[0], None)
            with self._lock:
                task.state, task.error, task.path = final
                task.speed_bps, task.eta_s = 0.0, None
                if task.state == "cancelled":
                    task.done_bytes = 0
                elif task.state == "done":
                    task.done_bytes = task.total_bytes or task.done_bytes
            self._emit(task, save=True)
