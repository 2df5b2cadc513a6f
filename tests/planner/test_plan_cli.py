"""`quantdesk plan` and `quantdesk hardware`: JSON shape, overrides, bad input."""
from __future__ import annotations

import json

import pytest

from quantdesk.core.cli import main
from quantdesk.core.planner import load_profile

OPTION_KEYS = {"type", "size_bytes", "ram_bytes", "vram_bytes", "gpu_layers", "fit"}


def _run_json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_json_shape(capsys, starter_model):
    data = _run_json(capsys, "plan", str(starter_model), "--ctx", "2048", "--vram", "0",
                     "--ram", "8G", "--json")
    assert {"hardware", "options", "recommended"} <= set(data)
    assert data["hardware"]["ram_available"] == 8 << 30 and data["hardware"]["gpus"] == []
    assert len(data["options"]) >= 10
    for o in data["options"]:
        assert OPTION_KEYS <= set(o)
        assert o["fit"] == "cpu" and o["gpu_layers"] == 0 and o["vram_bytes"] == 0
    own = [o for o in data["options"] if o["this_file"]]
    assert [o["type"] for o in own] == ["Q4_1"]
    assert own[0]["size_bytes"] == load_profile(starter_model).size_bytes
    assert own[0]["estimated"] is False
    assert data["recommended"]["type"] == "Q4_K_M" and data["recommended"]["n_ctx"] == 2048


def test_plan_with_vram_override_offloads(capsys, gemma_model):
    data = _run_json(capsys, "plan", str(gemma_model), "--ctx", "4096", "--vram", "4294967296",
                     "--json")
    by_type = {o["type"]: o for o in data["options"]}
    assert by_type["Q4_K_M"]["fit"] == "full-gpu" and by_type["Q4_K_M"]["gpu_layers"] == 19
    assert by_type["Q4_K_M"]["vram_bytes"] > by_type["Q4_K_M"]["size_bytes"] - 200 * 2**20
    assert data["recommended"]["fit"] == "full-gpu"


def test_plan_table_output(capsys, starter_model):
    assert main(["plan", str(starter_model), "--vram", "0"]) == 0
    out = capsys.readouterr().out
    assert "Q4_1   *" in out and "Recommended: Q4_K_M" in out


def test_plan_bad_input(capsys, tmp_path):
    assert main(["plan", str(tmp_path / "nope.gguf")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("quantdesk: ") and "\n" not in err
    (tmp_path / "x.gguf").write_text("not a model")
    assert main(["plan", str(tmp_path / "x.gguf")]) == 2
    assert "\n" not in capsys.readouterr().err.strip()
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(tmp_path / "x.gguf"), "--vram", "lots"])
    assert exc.value.code == 2 and "not a size" in capsys.readouterr().err


def test_hardware_json(capsys):
    data = _run_json(capsys, "hardware", "--json")
    assert data["logical_cores"] >= 1 and data["ram_total"] > 0
    assert isinstance(data["gpus"], list) and isinstance(data["gpu_offload_supported"], bool)


def test_parse_bytes():
    from quantdesk.core.cli.plan_cmd import parse_bytes
    assert parse_bytes("8589934592") == 8 << 30 == parse_bytes("8G") == parse_bytes("8 GiB")
    assert parse_bytes("512MiB") == 512 << 20 and parse_bytes("1.5g") == int(1.5 * (1 << 30))
