"""Hub errors: every failure the user can meet, as one clear line.

`translate()` maps what huggingface_hub / httpx raise onto these, so callers (CLI, GUI) only ever
show `str(error)`.
"""
from __future__ import annotations

import errno


class HubError(Exception):
    """A hub problem; str(e) is one line for the user."""


class OfflineError(HubError):
    """Offline mode is on, or the hub cannot be reached."""


class GatedError(HubError):
    """401/403: the repo is gated or private. The user must give a token (needs_token is True)."""
    needs_token = True


class NotFoundError(HubError):
    """404: repo, revision or file does not exist."""


class NetworkError(HubError):
    """The connection broke mid-transfer; partial data is kept for a resume."""


class DiskFullError(HubError):
    """Not enough free space; partial data is kept for a resume once space is freed."""


class ChecksumError(HubError):
    """The downloaded bytes do not match the hub's LFS sha256 (even after a fresh download)."""


class UnsafeServerDataError(HubError):
    """The hub (or whatever HF_ENDPOINT points at) sent a commit, ETag or file name that is not one
    of the hub's forms or that would put a file outside the cache; nothing was written."""


class DownloadCancelled(HubError):
    """The user cancelled; the partial file was removed."""


class DownloadPaused(HubError):
    """The user paused; the partial file is kept and the download can resume."""


def translate(exc: BaseException, what: str) -> HubError:
    """Turn a huggingface_hub / httpx / OS exception raised while doing `what` into a HubError."""
    if isinstance(exc, HubError):
        return exc
    from huggingface_hub import errors as hf_errors
    from quantdesk.core.hub.connection import http_library
    httpx = http_library()

    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return OfflineError(f"offline: cannot {what} because HF_HUB_OFFLINE is set")
    if isinstance(exc, hf_errors.GatedRepoError):
        return GatedError(f"cannot {what}: the repo is gated; accept its terms on the hub and log in with a token")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, hf_errors.RepositoryNotFoundError) and status in (401, 403):
        return GatedError(f"cannot {what}: the repo is private or gated; log in with a token that has access")
    if status in (401, 403):
        return GatedError(f"cannot {what}: access denied (HTTP {status}); log in with a token that has access")
    if isinstance(exc, (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError,
                        hf_errors.EntryNotFoundError)) or status == 404:
        return NotFoundError(f"cannot {what}: not found on the hub (HTTP 404)")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return OfflineError(f"offline: cannot {what}: the hub cannot be reached (no network?)")
    if isinstance(exc, (httpx.TransportError, httpx.TimeoutException)):
        return NetworkError(f"cannot {what}: network connection lost ({type(exc).__name__})")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DiskFullError(f"cannot {what}: the disk is full")
    if status is not None:
        return HubError(f"cannot {what}: the hub answered HTTP {status}")
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return HubError(f"cannot {what}: {first_line}")
