"""`quantdesk inspect` as a user runs it: a real subprocess, JSON values, exit status 2 on bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from quantdesk.core.gguf import inspect_gguf


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "inspect", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_json_output(gemma_model):
    out = _run(gemma_model, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    info = inspect_gguf(gemma_model)   # itself checked against llama.cpp in test_gguf_inspect.py
    expected = {"architecture": "gemma3", "file_type": "Q4_K_M", "has_chat_template": False,
                "parameters": info.parameters, "block_count": info.block_count,
                "context_length": info.context_length, "tensor_count": info.tensor_count,
                "size_bytes": gemma_model.stat().st_size, "files": [str(gemma_model)]}
    assert {k: data[k] for k in expected} == expected


def test_table_output(starter_model):
    out = _run(starter_model)
    assert out.returncode == 0, out.stderr
    rows = {line[:18].strip(): line[18:] for line in out.stdout.splitlines() if line[:1] != " "}
    info = inspect_gguf(starter_model)
    assert rows["File type"] == "Q4_1" and rows["Architecture"] == "llama"
    assert rows["Parameters"].endswith(f"({info.parameters:,})")
    assert rows["Chat template"] == "yes" and rows["Layers"] == str(info.block_count)


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "folder"])
def test_bad_input_exits_2_with_one_line(case, tmp_path, tiny_gguf):
    target = {"missing": tmp_path / "nope.gguf", "text": tmp_path / "notes.txt",
              "truncated": tmp_path / "cut.gguf", "folder": tmp_path}[case]
    if case == "text":
        target.write_text("hello\n")
    if case == "truncated":
        target.write_bytes(tiny_gguf.read_bytes()[:-10])
    out = _run(target, "--json")
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"quantdesk: {target.name} "), out.stderr
    assert "Traceback" not in out.stderr


def _closed_pipe_run(*args):
    """The command with a stdout whose reader is already gone (`| head` that has exited)."""
    import os
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "quantdesk.core.cli", *map(str, args)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [("inspect", "--json"), ("inspect",)])
def test_a_reader_that_went_away_ends_the_command_quietly(tiny_gguf, args):
    out = _closed_pipe_run(*args, tiny_gguf)
    assert out.returncode == 141, out.stderr     # as if killed by SIGPIPE
    assert out.stderr == ""                        # no BrokenPipeError traceback, no "Exception ignored"


def test_the_same_for_every_command_through_main(tmp_path):
    out = _closed_pipe_run("hub", "local", "--folder", tmp_path, "--json")
    assert (out.returncode, out.stderr) == (141, "")


def test_a_broken_chat_template_is_named_as_the_models(tmp_path):
    from gguf_testfiles import write_tiny_gguf
    path = tmp_path / "broken-template.gguf"
    write_tiny_gguf(path, chat_template="{% for m in messages %}{{ m.content }")
    out = _run(path, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["chat_template_problem"] == (
        "the model's chat template has a syntax error on line 1: unexpected '}'")
    table = _run(path)
    row = next(line for line in table.stdout.splitlines() if line.startswith("Chat template"))
    assert row.endswith("broken: the model's chat template has a syntax error on line 1: unexpected '}'")
    good = tmp_path / "good.gguf"
    write_tiny_gguf(good, chat_template="{% for m in messages %}{% generation %}{{ m.content }}"
                                        "{% endgeneration %}{% endfor %}")
    assert json.loads(_run(good, "--json").stdout)["chat_template_problem"] is None


def test_the_table_escapes_what_the_file_says(tmp_path):
    from gguf_testfiles import write_tiny_gguf
    path = tmp_path / "m.gguf"
    write_tiny_gguf(path, name="evil\x1b]0;pwned\x07\r\nforged: row")
    out = _run(path)
    assert out.returncode == 0, out.stderr
    name = next(line for line in out.stdout.splitlines() if line.startswith("Name"))
    assert name.endswith("evil\\x1b]0;pwned\\x07\\r\\nforged: row") and name.isprintable()
    assert "\x1b" not in out.stdout and "\r" not in out.stdout
