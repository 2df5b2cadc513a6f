"""File- and server-supplied names in messages: one escaping helper, used by every message that
shows them (GGUF, conversion, the hub, the CLI's listings)."""
from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from quantdesk.core.text import LIMIT, quoted, shown

HOSTILE = ["a\x00b", "\x1b[2J\x1b]0;pwned\x07", "line\r\nforged: line", "\u202egnp.exe", "x" * 1885,
           "tab\there", "\udcff"]


@pytest.mark.parametrize("name", HOSTILE)
def test_shown_is_one_printable_line_of_bounded_length(name):
    text = shown(name)
    assert text.isprintable() and len(text) <= LIMIT
    assert quoted(name) == f"'{text}'"


def test_shown_spells_out_what_it_escaped():
    assert shown("a\x00b\x1b[2J\r\n\u202e") == "a\\x00b\\x1b[2J\\r\\n\\u202e"
    assert shown("x" * 1885) == "x" * (LIMIT - 3) + "..."
    assert shown("é" * 10) == "é" * 10              # printable text is left as it is
    assert shown("Llama 3.1 8B Instruct") == "Llama 3.1 8B Instruct"
    assert shown(2**70) == str(2**70) and shown(None) == "None"
    assert shown(shown("a\x1bb")) == shown("a\x1bb")  # idempotent: escaping twice changes nothing


def test_the_old_private_helpers_are_gone():
    """One helper: the modules that had their own now use quantdesk.core.text."""
    import quantdesk.core.convert.errors as convert_errors
    import quantdesk.core.gguf.errors as gguf_errors
    import quantdesk.core.hub.cache_layout as cache_layout
    assert not hasattr(convert_errors, "shown") and not hasattr(gguf_errors, "quoted")
    assert cache_layout.quoted is quoted


def _gguf_with_duplicate_key(key: str) -> bytes:
    raw = key.encode()
    entry = struct.pack("<Q", len(raw)) + raw + struct.pack("<IB", 0, 1)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + entry + entry


@pytest.mark.parametrize("name", HOSTILE[:3] + ["y" * 1885])
def test_gguf_messages_escape_names_from_the_file(tmp_path, name):
    from quantdesk.core.gguf import GGUFError, HeaderError, check_file, parse_header
    with pytest.raises(HeaderError) as exc:
        parse_header(_gguf_with_duplicate_key(name))
    assert exc.value.reason.isprintable() and len(exc.value.reason) < 200, exc.value.reason
    assert shown(name) in exc.value.reason
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf_with_duplicate_key(name))
    with pytest.raises(GGUFError) as exc:
        check_file(path)
    assert str(exc.value).isprintable() and str(exc.value).startswith("m.gguf is corrupt")


def test_gguf_messages_escape_the_file_name(tmp_path):
    from quantdesk.core.gguf import GGUFError, check_file
    path = tmp_path / "bad\x1b[2J\nname.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 5))
    with pytest.raises(GGUFError) as exc:
        check_file(path)
    message = str(exc.value)
    assert message.isprintable() and message.startswith("bad\\x1b[2J\\nname.gguf is truncated")


def test_hub_listing_escapes_local_model_names(tmp_path):
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "evil\x1b]0;title\x07\rname.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    r = subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "hub", "local", "--folder", str(folder)],
                       capture_output=True, text=True, timeout=120, env={"HOME": str(tmp_path), "PATH": ""})
    assert r.returncode == 0, r.stderr
    line = r.stdout.rstrip("\n")
    assert "\n" not in line and line.isprintable(), repr(line)
    assert "evil\\x1b]0;title\\x07\\rname" in line
