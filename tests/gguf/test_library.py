"""The Library: starter model, added files (persisted), HF cache and models folder, de-duplicated."""
from __future__ import annotations

import json
import os

import pytest
from gguf_testfiles import add_to_hf_cache, write_tiny_gguf

from quantdesk.core import library as library_module
from quantdesk.core.gguf import GGUFError
from quantdesk.core.library import FILE_MISSING, Library


def _by_source(entries, source):
    return [e for e in entries if e.source == source]


def test_starter_model_listed_on_first_start(home, starter_model):
    entries = Library().entries()
    starter = _by_source(entries, "starter")
    assert [e.path for e in starter] == [starter_model]
    assert starter[0].info.file_type == "Q4_1" and starter[0].error is None


def test_add_persists_across_restart_and_remove_keeps_the_file(home, tmp_path, tiny_gguf):
    lib = Library()
    entry = lib.add(tiny_gguf)
    assert entry.info.tensor_count == 8 and entry.source == "added"
    saved = json.loads((home / "library.json").read_text())
    assert saved["added"] == [str(tiny_gguf)]

    restarted = Library()
    assert [e.path for e in _by_source(restarted.entries(), "added")] == [tiny_gguf]
    restarted.remove(tiny_gguf)
    assert _by_source(Library().entries(), "added") == []
    assert tiny_gguf.is_file()
    assert not list(home.glob("*.tmp"))


def test_add_bad_file_changes_nothing(home, tmp_path, tiny_gguf):
    lib = Library()
    lib.add(tiny_gguf)
    before = (home / "library.json").read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(tiny_gguf.read_bytes()[:5000])
    with pytest.raises(GGUFError, match="^bad.gguf is truncated"):
        lib.add(bad)
    assert (home / "library.json").read_bytes() == before


def test_added_file_that_disappears_stays_listed_as_missing(home, tiny_gguf):
    lib = Library()
    lib.add(tiny_gguf)
    moved = tiny_gguf.with_name("elsewhere.gguf")
    os.replace(tiny_gguf, moved)
    [entry] = _by_source(lib.entries(), "added")
    assert (entry.path, entry.info, entry.error) == (tiny_gguf, None, FILE_MISSING)
    os.replace(moved, tiny_gguf)  # the drive is plugged back in
    [entry] = _by_source(lib.entries(), "added")
    assert entry.info is not None and entry.error is None


def test_hf_cache_models_are_found_once(home, tmp_path, tiny_gguf):
    cache = tmp_path / "hf-cache"
    single, _readme = add_to_hf_cache(cache, "org/tiny-GGUF", {"tiny-Q8_0.gguf": tiny_gguf,
                                                                "README.md": b"# card\n"})
    parts = write_tiny_gguf(tmp_path / "big.gguf", n_layers=3, split_max_tensors=4)
    split = add_to_hf_cache(cache, "org/big-GGUF", {f"F16/{p.name}": p for p in parts})
    [broken] = add_to_hf_cache(cache, "org/broken-GGUF", {"broken.gguf": tiny_gguf.read_bytes()[:3000]})

    lib = Library()
    found = _by_source(lib.entries(), "hf-cache")
    assert [e.path for e in found] == [split[0], broken, single]   # sorted by repo, split as one
    assert found[0].info.files == tuple(split) and found[0].info.split_count == 3
    assert found[1].info is None and found[1].error.startswith("broken.gguf is truncated")
    assert found[2].info.name == "Tiny Test"

    # Adding a file that is already in the cache does not list it twice.
    lib.add(single)
    paths = [e.path for e in lib.entries()]
    assert paths.count(single) == 1


def test_removing_a_scanned_model_hides_it_until_added_again(home, tmp_path, tiny_gguf):
    [snap] = add_to_hf_cache(tmp_path / "hf-cache", "org/tiny-GGUF", {"tiny.gguf": tiny_gguf})
    Library().remove(snap)
    assert _by_source(Library().entries(), "hf-cache") == []
    assert snap.exists()
    Library().add(snap)
    assert [e.path for e in Library().entries() if e.path == snap] == [snap]


def test_missing_or_corrupt_hf_cache_is_tolerated(home, tmp_path, monkeypatch, tiny_gguf):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-such-cache"))
    assert _by_source(Library().entries(), "hf-cache") == []
    cache = tmp_path / "odd-cache"
    cache.mkdir()
    (cache / "models--not-a-folder").write_text("junk")
    (cache / "random-dir").mkdir()
    [good] = add_to_hf_cache(cache, "org/tiny-GGUF", {"tiny.gguf": tiny_gguf})
    [dangling] = add_to_hf_cache(cache, "org/gone-GGUF", {"gone.gguf": b"GGUF"})
    os.unlink(dangling.resolve())   # blob deleted behind the cache's back
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert good in [e.path for e in Library().entries()]


def test_models_folder_is_listed_as_quantized(home, tiny_gguf):
    target = home / "models" / "tiny-Q4_K_M.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(tiny_gguf.read_bytes())
    [entry] = _by_source(Library().entries(), "quantized")
    assert entry.path == target and entry.info.tensor_count == 8


def test_unreadable_library_file_is_kept_aside(home):
    home.mkdir(parents=True)
    (home / "library.json").write_text("{ not json")
    lib = Library()
    assert "kept as library.json.unreadable" in lib.warning
    assert (home / "library.json.unreadable").read_text() == "{ not json"
    assert lib.entries() is not None


def test_inspection_is_cached_by_size_and_mtime(home, tiny_gguf, monkeypatch):
    calls = []
    real = library_module.inspect_gguf
    monkeypatch.setattr(library_module, "inspect_gguf", lambda p: calls.append(p) or real(p))
    lib = Library()
    lib.add(tiny_gguf)
    first = len(calls)
    lib.entries()
    lib.entries()
    assert len(calls) == first + 1   # the starter model, once; the added file came from add()
    Library().entries()              # a restart reuses library-cache.json
    assert len(calls) == first + 1
    os.utime(tiny_gguf, ns=(1, 1))   # the file changed
    lib.entries()
    assert calls[-1] == tiny_gguf
