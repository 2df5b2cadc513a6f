"""Download one hub file into the huggingface_hub cache, resumably, with progress and cancel.

Why our own ranged writer instead of `hf_hub_download`: in huggingface_hub 2.x it writes to a
process-unique temp file that is deleted on any failure, so a download cannot survive a pause, a
crash or an app restart, and its only hooks are tqdm bars (no pause/cancel). We keep what makes
the cache the cache, the layout other tools read (cache_layout.py: blobs/<etag>, snapshots/<commit>/
<file> symlinks, refs/<revision>; our partial file is blobs/<etag>.incomplete), and we use
huggingface_hub for everything else: URL, HEAD metadata (etag, commit, size, redirects), auth
headers, its HTTP session and its error types. The partial file sits under the blob's own
name, so an interrupted download is found again by a new process. Bytes are checked against the
hub's LFS sha256 before the blob is published; a mismatch deletes the part and downloads afresh.
"""
from __future__ import annotations

import errno
import hashlib
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from quantdesk.core.hub.cache_layout import Target, check_request, link_snapshot, partial_bytes, publish, storage_folder
from quantdesk.core.hub.connection import auth_headers, check_online, endpoint, http_library, session
from quantdesk.core.hub.errors import (ChecksumError, DiskFullError, DownloadCancelled, DownloadPaused, HubError,
                                       NetworkError, translate)

RETRIES = 5          # consecutive failures without progress before giving up (partial kept)
READ_TIMEOUT = 30.0  # seconds without a byte before the connection counts as lost (then resumed)


class DownloadControl:
    """Pause / cancel flags checked between chunks; safe to set from any thread.

    Setting one also shuts down the connection being read, so a stalled download stops at once
    instead of after the read timeout.
    """

    def __init__(self):
        self._pause = threading.Event()
        self._cancel = threading.Event()
        self._response = None

    def attach(self, response) -> None:
        self._response = response

    def _interrupt(self) -> None:
        # A read blocked in recv() is woken by shutting its socket down; the worker then sees the
        # flag and closes the response itself. (Closing the response from this thread instead would
        # race the worker inside the HTTP library.) Without a socket, the read timeout ends the wait.
        response = self._response
        try:
            stream = response.extensions.get("network_stream") if response is not None else None
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                import socket
                sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass

    def pause(self):
        self._pause.set()
        self._interrupt()

    def cancel(self):
        self._cancel.set()
        self._interrupt()

    def reset(self):
        self._pause.clear()
        self._cancel.clear()

    def check(self):
        if self._cancel.is_set():
            raise DownloadCancelled("download cancelled")
        if self._pause.is_set():
            raise DownloadPaused("download paused")


@dataclass
class Progress:
    filename: str
    done_bytes: int
    total_bytes: int | None
    speed_bps: float          # moving average
    eta_s: float | None
    state: str                # "connecting" | "downloading" | "verifying" | "done"


def resolve_target(repo_id: str, filename: str, revision: str = "main", cache: Path | None = None) -> Target:
    """HEAD the file (huggingface_hub.get_hf_file_metadata): etag, commit, size, final URL.

    The names are checked before the request and the server's answer when the Target is made
    (cache_layout.py): a hostile hub gets UnsafeServerDataError, never a path outside the cache.
    """
    check_request(repo_id, filename, revision)
    check_online(f"download {filename}")
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint())
    try:
        meta = get_hf_file_metadata(url, token=_token_arg(), endpoint=endpoint())
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, f"download {filename} from {repo_id}") from None
    if not meta.etag or not meta.commit_hash:
        raise HubError(f"cannot download {filename}: the server did not send ETag/X-Repo-Commit (is HF_ENDPOINT a hub?)")
    return Target(repo_id, filename, revision, meta.commit_hash, meta.etag, meta.size,
                  meta.location or url, storage_folder(repo_id, cache))


def _token_arg():
    from quantdesk.core.hub.connection import get_token
    return get_token() or False


class _Speed:
    """Bytes/second over the last few seconds, for a steady speed and ETA."""

    def __init__(self, window: float = 3.0):
        self.window, self.samples = window, []

    def add(self, total_done: int) -> float:
        now = time.monotonic()
        self.samples.append((now, total_done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.pop(0)
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def _check_space(target: Target, have: int) -> None:
    if target.size is None:
        return
    need = target.size - have
    folder = target.partial.parent
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DiskFullError(f"not enough disk space for {target.filename}: needs {need / 1e9:.2f} GB more, "
                            f"{free / 1e9:.2f} GB free in {folder}")


def _sha256(path: Path, control: DownloadControl | None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            if control:
                control.check()
            h.update(block)
    return h.hexdigest()


def _transfer(target: Target, control: DownloadControl, report: Callable[[Progress], None]) -> None:
    """Append the missing bytes to the partial file, resuming across dropped connections."""
    httpx = http_library()
    from huggingface_hub.utils import hf_raise_for_status
    speed, failures, last_report, refreshed = _Speed(), 0, 0.0, False
    while True:
        have = partial_bytes(target)
        if target.size is not None and have >= target.size:
            if have > target.size:          # garbage past the end: start over
                target.partial.unlink()
                continue
            return
        control.check()
        headers = {**auth_headers(), "Accept-Encoding": "identity"}
        if not _same_host(target.url, endpoint()):
            headers.pop("authorization", None)   # a signed CDN URL: the token stays on the hub
            headers.pop("Authorization", None)
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with session().stream("GET", target.url, headers=headers,
                                  timeout=httpx.Timeout(READ_TIMEOUT, connect=10.0)) as response:
                control.attach(response)
                if response.status_code == 416 and have:   # nothing past what we have: start over
                    target.partial.unlink()
                    continue
                if response.status_code in (401, 403) and not refreshed and not _same_host(target.url, endpoint()):
                    # a signed CDN URL expired (long download, resume): ask the hub for a fresh one,
                    # pinned to the same commit so the partial bytes still belong to it
                    target.url = resolve_target(target.repo_id, target.filename, target.commit,
                                                target.storage.parent).url
                    refreshed = True
                    continue
                if response.status_code >= 400:
                    response.read()      # the error body, for huggingface_hub's error message
                hf_raise_for_status(response)
                mode = "ab" if response.status_code == 206 else "wb"   # 200: server ignored Range
                done = have if mode == "ab" else 0
                if target.size is None and response.headers.get("Content-Length"):
                    target.size = done + int(response.headers["Content-Length"])
                with open(target.partial, mode) as out:
                    for chunk in response.iter_bytes():   # as received: a drop loses nothing written
                        out.write(chunk)
                        done += len(chunk)
                        failures, refreshed = 0, False
                        now = time.monotonic()
                        if now - last_report > 0.2:
                            bps = speed.add(done)
                            eta = (target.size - done) / bps if bps and target.size else None
                            report(Progress(target.filename, done, target.size, bps, eta, "downloading"))
                            last_report = now
                        control.check()
            if target.size is None or partial_bytes(target) >= target.size:
                return
            raise httpx.RemoteProtocolError("connection closed before the end of the file")
        except (DownloadPaused, DownloadCancelled, HubError):
            raise
        except Exception as exc:  # noqa: BLE001 - sorted below
            control.attach(None)
            control.check()      # a pause/cancel that closed the connection is not a network error
            failures = _classify(exc, target, failures, httpx)
        finally:
            control.attach(None)
        if failures:
            time.sleep(min(0.2 * 2 ** failures, 5.0))


def _same_host(url: str, base: str) -> bool:
    from urllib.parse import urlsplit
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _classify(exc: Exception, target: Target, failures: int, httpx) -> int:
    """Raise the HubError for exc, or return the new failure count when a retry makes sense."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        raise DiskFullError(f"the disk is full while downloading {target.filename} "
                            f"({partial_bytes(target) / 1e9:.2f} GB kept; free space and resume)") from None
    if not isinstance(exc, (httpx.TransportError, httpx.TimeoutException)):
        raise translate(exc, f"download {target.filename}") from None   # HTTP status, file errors
    failures += 1
    if failures > RETRIES:
        raise NetworkError(f"network connection lost while downloading {target.filename} "
                           f"({partial_bytes(target) / 1e6:.1f} MB kept; resume later)") from None
    if isinstance(exc, httpx.ConnectError) and failures > 2:
        raise translate(exc, f"download {target.filename}") from None
    return failures


def download_file(repo_id: str, filename: str, *, revision: str = "main", sha256: str | None = None,
                  cache: Path | None = None, control: DownloadControl | None = None,
                  progress: Callable[[Progress], None] | None = None, target: Target | None = None) -> Path:
    """Download (or resume) one file into the cache; returns the snapshot path.

    sha256: the hub's LFS sha256 (from model_info); when None and the ETag is a sha256 (LFS files),
    the ETag is used. Raises DownloadPaused (partial kept), DownloadCancelled (partial removed),
    GatedError, NotFoundError, NetworkError, DiskFullError, ChecksumError, OfflineError.
    """
    control = control or DownloadControl()
    report = progress or (lambda p: None)
    target = target or resolve_target(repo_id, filename, revision, cache)
    if target.pointer.exists():
        report(Progress(filename, target.size or 0, target.size, 0.0, 0.0, "done"))
        return target.pointer
    if target.blob.exists():       # same bytes already cached under another revision/name
        link_snapshot(target)
        report(Progress(filename, target.size or 0, target.size, 0.0, 0.0, "done"))
        return target.pointer
    expected = (sha256 or (target.etag if len(target.etag) == 64 else None) or "").lower() or None
    target.partial.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock, Timeout
    lock = FileLock(str(target.lock))
    Path(lock.lock_file).parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise HubError(f"{filename} is already being downloaded by another process") from None
    try:
        for attempt in (1, 2):
            try:
                report(Progress(filename, partial_bytes(target), target.size, 0.0, None, "connecting"))
                _check_space(target, partial_bytes(target))
                _transfer(target, control, report)
                report(Progress(filename, partial_bytes(target), target.size, 0.0, None, "verifying"))
                if expected and _sha256(target.partial, control) != expected:
                    target.partial.unlink()
                    if attempt == 2:
                        raise ChecksumError(f"{filename} failed its sha256 check twice; the hub copy may be "
                                            "changing or the connection corrupts data")
                    continue   # corrupt part: delete it and download afresh once
                path = publish(target)
                report(Progress(filename, target.size or 0, target.size, 0.0, 0.0, "done"))
                return path
            except DownloadCancelled:
                target.partial.unlink(missing_ok=True)
                raise
        raise AssertionError("unreachable")
    finally:
        lock.release()
