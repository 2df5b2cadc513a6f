"""`quantdesk chat`: a real reply from the starter model, and one-line errors for bad files."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from quantdesk.core.cli import main


@pytest.mark.slow
def test_chat_json_from_a_real_process(starter_model):
    # A real `quantdesk` process: stdout must hold exactly one JSON object (llama.cpp's logs go
    # to the host's log file, never to our stdout).
    out = subprocess.run(
        [sys.executable, "-m", "quantdesk.core.cli", "chat", str(starter_model),
         "--prompt", "What is the capital of France? Answer in one sentence.",
         "--temperature", "0", "--max-tokens", "48", "--ctx", "1024", "--gpu-layers", "0",
         "--json"],
        capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert "Paris" in reply["text"]
    assert reply["prompt_tokens"] > 0 and 0 < reply["completion_tokens"] <= 48
    assert reply["tokens_per_second"] > 0
    assert reply["gpu_layers"] == 0 and reply["used_chat_template"] is True
    plan = reply["plan"]   # what the model manager decided, for the context it loaded
    assert plan["gpu_layers_requested"] == 0 and plan["gpu_layers"] == 0
    assert plan["n_ctx"] == reply["n_ctx"] == 1024
    assert out.stderr == ""


@pytest.mark.slow
def test_chat_json_reports_the_auto_plan_it_loaded(starter_model, capsys):
    from quantdesk.core.runtime import LoadRequest, ModelManager
    code = main(["chat", str(starter_model), "--prompt", "Hi", "--max-tokens", "4",
                 "--ctx", "768", "--gpu-layers", "auto", "--threads", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    reply = json.loads(out)
    plan = reply["plan"]
    expected = ModelManager().resolve(LoadRequest(starter_model, n_ctx=768, gpu_layers="auto"))
    assert plan["gpu_layers_requested"] == "auto" and plan["note"] == expected.note
    assert plan["gpu_layers"] == plan["planned_gpu_layers"] == expected.n_gpu_layers
    assert plan["n_ctx"] == reply["n_ctx"] == 768   # planned for the context it loaded
    # The host offloads what the plan asked for, or none when its llama.cpp cannot offload.
    assert reply["gpu_layers"] in (0, min(expected.n_gpu_layers, plan["n_layer"] + 1))


@pytest.mark.slow
def test_chat_streams_text_to_stdout(starter_model, capsys):
    code = main(["chat", str(starter_model), "--prompt", "What is the capital of France?",
                 "--system", "You answer in one short sentence.", "--temperature", "0",
                 "--max-tokens", "24", "--ctx", "512", "--seed", "3", "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.endswith("\n") and len(out.strip()) > 0


def _truncated(starter_model, tmp_path):
    path = tmp_path / "truncated.gguf"
    data = starter_model.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _not_gguf(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("these are my notes, not a model\n" * 50)
    return path


def _corrupt(starter_model, tmp_path):
    path = tmp_path / "corrupt.gguf"
    data = bytearray(starter_model.read_bytes())
    data[8:16] = (2**62).to_bytes(8, "little")     # absurd tensor count
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", ["missing", "not-gguf", "truncated", "corrupt"])
def test_bad_model_exits_2_with_one_line(kind, starter_model, tmp_path, capsys):
    path = {
        "missing": lambda: tmp_path / "nowhere.gguf",
        "not-gguf": lambda: _not_gguf(tmp_path),
        "truncated": lambda: _truncated(starter_model, tmp_path),
        "corrupt": lambda: _corrupt(starter_model, tmp_path),
    }[kind]()
    code = main(["chat", str(path), "--prompt", "hello"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quantdesk: ")
    assert "Traceback" not in err
    assert path.name in lines[0]


@pytest.mark.slow
def test_chat_loads_with_the_models_settings_unless_an_option_is_given(starter_model, tmp_path,
                                                                       monkeypatch, capsys):
    # the Library's "Load settings…" / `quantdesk model-settings` store, as the window and the
    # server use it; an option given on the command line still wins
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path))
    assert main(["model-settings", str(starter_model), "--ctx", "1024"]) == 0
    capsys.readouterr()
    runs = {}
    for extra in ([], ["--ctx", "512"]):
        code = main(["chat", str(starter_model), "--prompt", "Hi", "--max-tokens", "2",
                     "--gpu-layers", "0", "--threads", "1", "--json", *extra])
        out, err = capsys.readouterr()
        assert code == 0, err
        runs[tuple(extra)] = json.loads(out)["n_ctx"]
    assert runs == {(): 1024, ("--ctx", "512"): 512}   # (llama.cpp pads to 256)
