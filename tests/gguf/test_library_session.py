"""The library session (core.runtime.library): what every door does with the local models."""
from __future__ import annotations

import json

import pytest

from gguf_testfiles import write_tiny_gguf

from quantdesk.core.library import Library
from quantdesk.core.runtime import LibrarySession


def _paths(listing, source=None):
    return [e.path for e in listing.entries if source is None or e.source == source]


def test_open_adds_good_files_and_reports_bad_ones(home, tmp_path, tiny_gguf):
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model\n" * 20)
    session = LibrarySession()
    good, failed = session.open_paths([tiny_gguf, bad])
    assert (good.path, good.error, good.info.tensor_count) == (str(tiny_gguf), None, 8)
    assert failed.info is None and failed.path == str(bad)
    assert bad.name in failed.error and "\n" not in failed.error
    # Remembered for the next start (a fresh Library), the bad file never.
    assert _paths(LibrarySession().listing(), "added") == [tiny_gguf]


def test_the_parts_of_a_split_model_open_as_one(home, tmp_path):
    parts = write_tiny_gguf(tmp_path / "tiny.gguf", n_layers=3, split_max_tensors=4)
    results = LibrarySession().open_paths(reversed(parts))
    assert len(results) == 1
    assert results[0].path == str(parts[-1]) and results[0].info.path == parts[0]
    assert _paths(LibrarySession().listing(), "added") == [parts[0]]


def test_an_unreadable_library_file_is_said_once(home):
    home.mkdir(parents=True)
    (home / "library.json").write_text("{not json")
    session = LibrarySession()
    first, second = session.listing(), session.listing()
    assert "library.json" in first.warning and second.warning is None
    assert (home / "library.json.unreadable").read_text() == "{not json"


def test_a_written_model_is_listed_where_it_was_written(home, tmp_path):
    from quantdesk.core.paths import models_dir
    session = LibrarySession()
    inside = models_dir() / "mine-Q4_0.gguf"
    inside.parent.mkdir(parents=True, exist_ok=True)
    write_tiny_gguf(inside)
    outside = tmp_path / "elsewhere" / "mine-Q8_0.gguf"
    outside.parent.mkdir()
    write_tiny_gguf(outside)
    session.add_written(inside)
    session.add_written(outside)
    listing = session.listing()
    assert _paths(listing, "quantized") == [inside]   # found by the scan, not added
    assert _paths(listing, "added") == [outside]
    assert json.loads((home / "library.json").read_text())["added"] == [str(outside)]


def test_remove_forgets_but_keeps_the_file(home, tiny_gguf):
    session = LibrarySession()
    session.open_paths([tiny_gguf])
    session.remove(tiny_gguf)
    assert tiny_gguf not in _paths(session.listing()) and tiny_gguf.is_file()


def test_fit_verdicts_plan_readable_entries_with_the_users_figures(home, starter_model, tmp_path,
                                                                  monkeypatch):
    from quantdesk.core import planner
    from quantdesk.core.hardware import detect
    broken = tmp_path / "broken.gguf"
    write_tiny_gguf(broken)
    session = LibrarySession()
    session.open_paths([broken])
    broken.write_bytes(broken.read_bytes()[:64])       # truncated after it was added
    entries = session.listing().entries
    assert {str(e.path) for e in entries if e.info is None} == {str(broken)}

    fits = session.fit_verdicts(entries, {"vram": 0})
    assert set(fits) == {str(starter_model)}           # the unreadable file is not planned
    expected = planner.plan_for_model(Library().entries()[0].info, n_ctx=2048, lower_ctx=False,
                                      hardware=detect().with_overrides(vram=0))
    assert fits[str(starter_model)].fit == expected.fit == "cpu"

    def refuse(*_a, **_k):
        raise ValueError("no such architecture\nsecond line")
    monkeypatch.setattr(planner, "plan_for_model", refuse)
    assert session.fit_verdicts(entries) == {str(starter_model): "no such architecture"}


# ---- removing and deleting -----------------------------------------------------------------

def _hf_snapshot(cache, repo, revs, filename, data_from):
    """models--org--name with blobs/ and snapshot links, as huggingface_hub lays them out;
    the same blob linked from every revision in `revs`."""
    import os
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True)
    blob = folder / "blobs" / "0123abcd"
    blob.write_bytes(data_from.read_bytes())
    links = []
    for rev in revs:
        snap = folder / "snapshots" / rev
        snap.mkdir(parents=True)
        os.symlink(os.path.relpath(blob, snap), snap / filename)
        links.append(snap / filename)
    return blob, links


def test_a_model_in_our_models_folder_is_deleted_on_the_users_word(home, tiny_gguf):
    from quantdesk.core.paths import models_dir
    ours = models_dir() / "tiny-Q8_0.gguf"
    ours.write_bytes(tiny_gguf.read_bytes())
    session = LibrarySession()
    plan = session.plan_deletion(ours)
    assert (plan.where, plan.needs_confirmation, plan.files) == ("models-folder", False, (ours,))
    assert plan.size_bytes == ours.stat().st_size
    session.remove_and_delete(ours)
    assert not ours.exists() and ours not in _paths(session.listing())
    # Written again under the same name (a new quantization): listed again, not hidden.
    ours.write_bytes(tiny_gguf.read_bytes())
    assert ours in _paths(session.listing(), "quantized")


def test_a_file_elsewhere_needs_the_users_explicit_yes(home, tiny_gguf):
    session = LibrarySession()
    session.open_paths([tiny_gguf])
    plan = session.plan_deletion(tiny_gguf)
    assert plan.where == "elsewhere" and plan.needs_confirmation
    assert str(tiny_gguf.parent) in plan.note
    with pytest.raises(PermissionError):
        session.remove_and_delete(tiny_gguf)
    assert tiny_gguf.is_file() and tiny_gguf in _paths(session.listing())   # nothing changed
    session.remove_and_delete(tiny_gguf, confirmed=True)
    assert not tiny_gguf.exists() and tiny_gguf not in _paths(session.listing())


def test_hf_cache_blob_shared_by_another_snapshot_is_kept(home, tmp_path, tiny_gguf):
    from quantdesk.core.runtime.library import plan_deletion
    cache = tmp_path / "hf-cache"
    blob, links = _hf_snapshot(cache, "org/Tiny-GGUF", ["aaaa", "bbbb"], "tiny.Q8_0.gguf",
                               tiny_gguf)
    session = LibrarySession()
    # One revision is listed (the same blob is one model); the other shares its blob.
    entry = next(e for e in session.listing().entries if e.path in links)
    new, old = entry.path, next(p for p in links if p != entry.path)
    plan = plan_deletion(entry)
    assert plan.where == "hf-cache" and plan.needs_confirmation
    assert plan.files == (new,) and plan.size_bytes == 0
    assert "org/Tiny-GGUF" in plan.note and "other snapshots" in plan.note
    session.remove_and_delete(new, confirmed=True)
    assert not new.is_symlink() and blob.is_file() and old.is_file()   # the other revision works


def test_hf_cache_blob_of_one_snapshot_goes_with_it(home, tmp_path, tiny_gguf):
    cache = tmp_path / "hf-cache"
    blob, (link,) = _hf_snapshot(cache, "org/Solo-GGUF", ["cccc"], "solo.Q8_0.gguf", tiny_gguf)
    session = LibrarySession()
    plan = session.plan_deletion(link)
    assert plan.files == (link, blob) and plan.size_bytes == blob.stat().st_size
    assert "other snapshots" not in plan.note
    session.remove_and_delete(link, confirmed=True)
    assert not link.is_symlink() and not blob.exists()


def test_the_starter_model_is_never_deleted(home):
    from quantdesk.core.runtime.library import plan_deletion
    session = LibrarySession()
    starter = next(e for e in session.listing().entries if e.source == "starter")
    assert not plan_deletion(starter).allowed
    with pytest.raises(PermissionError):
        session.remove_and_delete(starter.path, confirmed=True)
    assert starter.path.is_file()


def test_look_alike_names_say_where_they_are_from(home, tmp_path):
    from pathlib import Path
    from quantdesk.core.library import LibraryEntry
    from quantdesk.core.runtime.library import display_names
    cache = tmp_path / "hf-cache"
    entries = [LibraryEntry(cache / "models--bartowski--Llama-GGUF/snapshots/a/Llama.Q4_K_M.gguf",
                            "hf-cache", None, None),
               LibraryEntry(cache / "models--unsloth--Llama-GGUF/snapshots/b/llama-q4_k_m.gguf",
                            "hf-cache", None, None),
               LibraryEntry(Path("/data/x/model.gguf"), "added", None, None),
               LibraryEntry(Path("/data/y/model.gguf"), "added", None, None),
               LibraryEntry(Path("/a/same/m.gguf"), "added", None, None),
               LibraryEntry(Path("/b/same/m.gguf"), "added", None, None),
               LibraryEntry(Path("/data/unique-00001-of-00002.gguf"), "added", None, None)]
    assert display_names(entries) == [
        "Llama.Q4_K_M  ·  bartowski/Llama-GGUF", "llama-q4_k_m  ·  unsloth/Llama-GGUF",
        "model  ·  x", "model  ·  y", "m  ·  /a/same", "m  ·  /b/same", "unique"]
