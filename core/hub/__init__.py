"""The Hugging Face hub: search, repo files as quant variants, remote GGUF headers, downloads,
and models other apps downloaded. huggingface_hub is imported only inside the functions that
need it, so importing this package is cheap.

    search(query, filter=, sort=, limit=)   -> list[SearchResult]   (SearchPager for lazy pages)
    repo_details(repo_id)                    -> RepoDetails (variants grouped, LFS sha256 and sizes)
    read_variant_header(repo_id, variant)    remote header of each part (Range requests, prefix only)
    fit_variant(variant, n_ctx=)             planner verdict on that header
    convertible(details)                     can the converter take this safetensors repo? (config.json)
    download_file(repo_id, filename, ...)    resumable, verified download into the HF cache
    DownloadManager                          threads, pause/resume/cancel, survives restarts
    snapshot_job(repo_id) / fetch_snapshot   a safetensors checkpoint into the cache (resumable)
    find_local_models()                      GGUFs from LM Studio, Ollama and user folders
"""
from quantdesk.core.hub.errors import (ChecksumError, DiskFullError, DownloadCancelled, DownloadPaused, GatedError,
                                       HubError, NetworkError, NotFoundError, OfflineError, UnsafeServerDataError)
from quantdesk.core.hub.search import SearchPager, SearchResult, search
from quantdesk.core.hub.variants import RepoDetails, RepoFile, Variant, parse_quant, read_variant_header, repo_details
from quantdesk.core.hub.fit import fit_variant
from quantdesk.core.hub.convertible import Convertible, convertible
from quantdesk.core.hub.download import DownloadControl, Progress, download_file
from quantdesk.core.hub.snapshot import Snapshot, SnapshotProgress, fetch_snapshot, local_snapshot, snapshot_job

__all__ = [
    "ChecksumError", "DiskFullError", "DownloadCancelled", "DownloadPaused", "GatedError", "HubError",
    "NetworkError", "NotFoundError", "OfflineError", "UnsafeServerDataError", "SearchPager", "SearchResult",
    "search", "RepoDetails", "RepoFile", "Variant", "parse_quant", "read_variant_header", "repo_details", "fit_variant",
    "Convertible", "convertible",
    "DownloadControl", "Progress", "download_file",
    "Snapshot", "SnapshotProgress", "fetch_snapshot", "local_snapshot", "snapshot_job",
]
