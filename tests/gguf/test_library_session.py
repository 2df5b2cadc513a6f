"""The library session (core.runtime.library): what every door does with the local models."""
from __future__ import annotations

import json

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
