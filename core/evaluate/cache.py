"""On-disk caches of the quality report: a reference model's log-probs, so comparing many quants
runs the reference once, and each finished report, so adding one quant to a comparison scores only
that one.

Key: content hash of the reference file (whole file up to 2 GiB; above that its size plus 64
spread-out 1 MiB samples, so a 15 GB F16 file is not read end to end each time), hash of the
text, n_ctx, chunk limit and the cache format. An entry is a folder with tokens.npy, values.npy
(uint16 log-probs, llama.cpp's compact form), params.npy, nll.npy and meta.json; it is written as
KEY.part and renamed when complete, so a cancelled or crashed run leaves nothing that reads as
valid. Only the most recently used few entries are kept (they are large: 2 bytes x vocabulary
per scored token).

A report is keyed by the reference's and the quant's content hashes, the text's hash, n_ctx, the
chunk limit and CPU/GPU: reports/KEY.json, a few hundred bytes, the last KEEP_REPORTS kept.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

FORMAT = 1
KEEP = 3
KEEP_REPORTS = 500
REPORTS = "reports"     # the report cache's folder inside the cache root (not a reference entry)
FULL_HASH_LIMIT = 2 << 30
SAMPLE = 1 << 20

# Hashing a 2 GB file takes seconds: a file unchanged since this process hashed it (same size and
# modification time) keeps its fingerprint.
_fingerprints: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: str | Path) -> str:
    path = Path(path)
    st = path.stat()
    memo = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if memo not in _fingerprints:
        _fingerprints[memo] = _hash_file(path, st.st_size)
    return _fingerprints[memo]


def _hash_file(path: Path, size: int) -> str:
    h = hashlib.sha256(f"{size}:".encode())
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: f.read(8 << 20), b""):
                h.update(block)
        else:
            for i in range(64):
                f.seek((size - SAMPLE) * i // 63)
                h.update(f.read(SAMPLE))
    return h.hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(ref_fingerprint: str, text_digest: str, n_ctx: int, max_chunks: int | None,
              gpu: bool) -> str:
    raw = json.dumps([FORMAT, ref_fingerprint, text_digest, int(n_ctx), max_chunks or 0, gpu])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is None:
        from quantdesk.core.paths import data_dir
        cache_dir = data_dir() / "cache" / "reference-logits"
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    return root


def lookup(root: Path, key: str) -> dict | None:
    """The entry's meta (with its folder under 'dir') if complete, else None; marks it used."""
    entry = root / key
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.utime(entry / "meta.json")
    except OSError:
        pass
    meta["dir"] = str(entry)
    return meta


def new_part(root: Path, key: str) -> Path:
    part = root / f"{key}.part"
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    return part


def commit(root: Path, key: str, part: Path, meta: dict) -> dict:
    (part / "meta.json").write_text(json.dumps(meta))
    final = root / key
    shutil.rmtree(final, ignore_errors=True)
    part.rename(final)
    trim(root)
    return dict(meta, dir=str(final))


def discard(part: Path) -> None:
    shutil.rmtree(part, ignore_errors=True)


def trim(root: Path, keep: int = KEEP) -> None:
    """Drop all but the `keep` most recently used entries, and stale .part folders."""
    entries = []
    for d in root.iterdir():
        if d.name == REPORTS:
            continue
        if d.name.endswith(".part"):
            try:
                if time.time() - d.stat().st_mtime > 24 * 3600:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                pass
            continue
        try:
            entries.append(((d / "meta.json").stat().st_mtime, d))
        except OSError:
            shutil.rmtree(d, ignore_errors=True)
    for _, d in sorted(entries, reverse=True)[keep:]:
        shutil.rmtree(d, ignore_errors=True)


# ---- finished reports -----------------------------------------------------------------------------

def report_key(ref_fingerprint: str, model_fingerprint: str, text_digest: str, n_ctx: int,
               max_chunks: int | None, gpu: bool) -> str:
    raw = json.dumps([FORMAT, "report", ref_fingerprint, model_fingerprint, text_digest,
                      int(n_ctx), max_chunks or 0, gpu])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def lookup_report(root: Path, key: str) -> dict | None:
    """The stored report's fields, or None (absent or unreadable: it is scored again)."""
    path = root / REPORTS / f"{key}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.utime(path)
    except OSError:
        pass
    return data if isinstance(data, dict) else None


def store_report(root: Path, key: str, fields: dict) -> None:
    """Write one report (renamed into place: a crash never leaves half a report)."""
    folder = root / REPORTS
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{key}.json.{os.getpid()}.part"
    try:
        part.write_text(json.dumps(fields))
        os.replace(part, folder / f"{key}.json")
    except OSError:
        part.unlink(missing_ok=True)   # a cache that cannot be written only costs time
        return
    stored = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in stored[KEEP_REPORTS:]:
        old.unlink(missing_ok=True)
