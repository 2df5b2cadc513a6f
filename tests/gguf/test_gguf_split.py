"""Split GGUFs (NAME-0000i-of-0000N.gguf, as gguf-py and llama.cpp's gguf-split write them)."""
from __future__ import annotations

import os

import pytest
from gguf_testfiles import open_handles_to, write_tiny_gguf

from quantdesk.core.gguf import GGUFError, inspect_gguf


@pytest.fixture
def split_model(tmp_path):
    files = write_tiny_gguf(tmp_path / "tiny.gguf", n_layers=3, split_max_tensors=4)
    assert [f.name for f in files] == [f"tiny-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    whole = tmp_path / "whole" / "tiny.gguf"
    whole.parent.mkdir()
    write_tiny_gguf(whole, n_layers=3)  # the same model in one file
    return files, whole


def test_any_part_opens_as_one_model(split_model):
    files, whole = split_model
    single = inspect_gguf(whole)
    infos = [inspect_gguf(f) for f in files]
    assert infos[0] == infos[1] == infos[2]
    info = infos[0]
    assert info.path == files[0] and info.files == tuple(files) and info.split_count == 3
    assert info.size_bytes == sum(os.path.getsize(f) for f in files)
    for key in ("parameters", "tensor_count", "tensor_bytes", "layer_bytes", "architecture",
                "file_type", "block_count", "context_length", "vocab_size", "chat_template", "name"):
        assert getattr(info, key) == getattr(single, key), key
    assert all(open_handles_to(f) == [] for f in files)


def test_missing_part(split_model):
    files, _ = split_model
    files[1].unlink()
    for f in (files[0], files[2]):
        with pytest.raises(GGUFError, match=r"^tiny-00002-of-00003\.gguf is missing \(part 2 of 3"):
            inspect_gguf(f)


def test_truncated_part_is_named(split_model):
    files, _ = split_model
    data = files[2].read_bytes()
    files[2].write_bytes(data[:-100])
    with pytest.raises(GGUFError, match=r"^tiny-00003-of-00003\.gguf is truncated"):
        inspect_gguf(files[0])


def test_parts_swapped(split_model):
    files, _ = split_model
    tmp = files[1].with_suffix(".tmp")
    os.replace(files[1], tmp)
    os.replace(files[2], files[1])
    os.replace(tmp, files[2])
    with pytest.raises(GGUFError, match=r"is not part 2 of 3 of this model \(its metadata says part 3 of 3\)"):
        inspect_gguf(files[0])


def test_renamed_part_cannot_find_the_others(split_model):
    files, _ = split_model
    renamed = files[0].with_name("my-model.gguf")
    os.replace(files[0], renamed)
    with pytest.raises(GGUFError, match=r"^my-model\.gguf is part 1 of a 3-part model"):
        inspect_gguf(renamed)
