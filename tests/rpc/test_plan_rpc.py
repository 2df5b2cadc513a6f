"""`quantdesk plan MODEL --rpc`: the split shown before loading is the one a chat load with the
same workers plans and llama.cpp then places; a worker that does not answer is named and left
out. Real `quantdesk worker` processes on loopback."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import free_port

pytestmark = pytest.mark.slow


def quantdesk(home, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, QUANTDESK_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "quantdesk.core.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def without_cpu_budget(split: dict) -> dict:
    """The split minus what this machine's free RAM decides (it moves between two runs)."""
    parts = [dict(p, budget=None) if p["kind"] == "cpu" else p for p in split["parts"]]
    return {**split, "parts": parts, "fits": None}


def test_plan_shows_the_split_the_chat_load_uses(tmp_path, start_worker, starter_model):
    # Each worker too small for the whole model: both take layers.
    a, b = start_worker("--mem", "150"), start_worker("--mem", "200")
    rpc = f"{a.endpoint},{b.endpoint}"
    home = tmp_path / "home"
    planned = quantdesk(home, "plan", starter_model, "--ctx", "1024", "--rpc", rpc, "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["used"] == [a.endpoint, b.endpoint] and plan["left_out"] == []
    split = plan["split"]
    assert [p["name"] for p in split["parts"]] == [a.endpoint, b.endpoint, "CPU"]
    assert all(n > 0 for n in split["tensor_split"]), split["note"]

    # the text form, before the load (a worker with --mem advertises less once it has
    # served a load: its process keeps some of what it grew by)
    text = quantdesk(home, "plan", starter_model, "--ctx", "1024", "--rpc", rpc)
    assert text.returncode == 0 and text.stderr == ""
    rows = {line.split()[0]: line.split()[1] for line in text.stdout.splitlines()[2:-1]}
    assert rows == {a.endpoint: str(split["tensor_split"][0]),
                    b.endpoint: str(split["tensor_split"][1]), "this": "CPU"}
    assert text.stdout.splitlines()[-1].startswith(
        f"{split['n_gpu_layers']} of 31 layers leave the CPU (tensor_split "
        f"{','.join(map(str, split['tensor_split']))})")

    chat = quantdesk(home, "chat", starter_model, "--ctx", "1024", "--rpc", rpc,
                     "--prompt", "Hi", "--max-tokens", "2", "--temperature", "0", "--json")
    assert chat.returncode == 0, chat.stderr
    loaded = json.loads(chat.stdout)
    assert without_cpu_budget(loaded["plan"]["split"]) == without_cpu_budget(split)
    assert loaded["gpu_layers"] == split["n_gpu_layers"] == plan["gpu_layers"]
    # and llama.cpp put exactly those layers on each worker
    placed = {p["endpoint"]: p["layers"] for p in loaded["placement"] if p["endpoint"]}
    assert placed == {p["name"]: p["layers"] for p in split["parts"] if p["kind"] == "worker"}


def test_a_worker_that_does_not_answer_is_named_and_left_out(tmp_path, start_worker,
                                                            starter_model):
    live, dead = start_worker("--mem", "500"), f"127.0.0.1:{free_port()}"
    home = tmp_path / "home"
    out = quantdesk(home, "plan", starter_model, "--ctx", "1024", "--rpc",
                    f"{dead},{live.endpoint}", "--json")
    assert out.returncode == 0, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith(f"quantdesk: left out: worker {dead} is not reachable (")
    data = json.loads(out.stdout)
    assert data["used"] == [live.endpoint] and len(data["left_out"]) == 1
    assert [p["name"] for p in data["split"]["parts"]] == [live.endpoint, "CPU"]

    alone = quantdesk(home, "plan", starter_model, "--ctx", "1024", "--rpc", dead)
    assert alone.returncode == 1
    [line] = alone.stderr.splitlines()
    assert line.startswith(f"quantdesk: left out: worker {dead} is not reachable (")
    assert alone.stdout.startswith("No worker answered: a chat load of ")


@pytest.mark.parametrize("case", ["hf folder", "not a gguf", "missing", "bad address"])
def test_bad_input_is_one_line(tmp_path, case):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    notes = tmp_path / "notes.gguf"
    notes.write_text("not a model\n" * 20)
    model, rpc, expected = {
        "hf folder": (folder, "127.0.0.1:1", "is a folder: --rpc plans the load of a GGUF file"),
        "not a gguf": (notes, "127.0.0.1:1", "notes.gguf"),
        "missing": (tmp_path / "gone.gguf", "127.0.0.1:1", "gone.gguf"),
        "bad address": (notes, "[::1]:50052", "is not a worker address"),
    }[case]
    out = quantdesk(tmp_path / "home", "plan", model, "--rpc", rpc)
    assert out.returncode == 2 and out.stdout == ""
    line = out.stderr.splitlines()[-1]   # argparse puts its usage line first
    assert expected in line and "Traceback" not in out.stderr
