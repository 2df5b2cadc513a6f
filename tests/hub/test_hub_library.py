"""What the hub downloads, the Library lists (it scans the huggingface_hub cache)."""
from __future__ import annotations

from quantdesk.core import hub, library

from .conftest import GGUF_REPO


def test_downloaded_split_variant_appears_in_the_library(hub_env, fakehub, tmp_path):
    details = hub.repo_details(GGUF_REPO)
    f16 = next(v for v in details.variants if v.quant == "F16")
    paths = [hub.download_file(GGUF_REPO, f.name, sha256=f.sha256) for f in f16.files]
    entries = [e for e in library.Library(tmp_path / "lib").entries() if e.source == "hf-cache"]
    (entry,) = entries   # one model, not one entry per part
    assert entry.error is None and entry.info.file_type == "F16"
    assert [str(p) for p in entry.info.files] == [str(p) for p in paths]
    assert entry.info.size_bytes == f16.size_bytes
