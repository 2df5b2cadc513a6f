"""The planner counts a load's vision projector (core/planner/projector.py): on the GPU with any
offloaded layer, else in RAM; "auto" GPU layers leave room for it; the model manager, `quantdesk
plan` and predicted_bytes count it once. The estimate against libmtmd's own compute-buffer line
and the RSS it takes: tests/planner + benchmarks/projector_memory.py (figures in RESULTS.md)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from quantdesk.core.cli import main
from quantdesk.core.hardware import detect
from quantdesk.core.planner import estimate_memory, load_profile, plan_profile
from quantdesk.core.planner.plan import vram_budget
from quantdesk.core.planner.projector import ProjectorCost, projector_cost

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "engine"))
from tiny_vision_chat import build_gguf_pair  # noqa: E402

MiB = 1 << 20
BIG = ProjectorCost("/x/mmproj.gguf", weights_bytes=60 * MiB, compute_bytes=30 * MiB,
                    host_bytes=5 * MiB, n_patches=4096)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return build_gguf_pair(tmp_path_factory.mktemp("vision"))


def test_the_projector_goes_on_the_gpu_with_any_layer_else_in_ram(tiny_model):
    profile = load_profile(tiny_model)
    for layers in (0, 1, profile.n_layer + 1):
        bare = estimate_memory(profile, n_ctx=512, n_gpu_layers=layers)
        with_it = estimate_memory(profile, n_ctx=512, n_gpu_layers=layers, projector=BIG)
        on_gpu = layers > 0
        assert with_it.vram_bytes - bare.vram_bytes == (90 * MiB if on_gpu else 0)
        assert with_it.ram_bytes - bare.ram_bytes == (5 * MiB if on_gpu else 95 * MiB)
        assert (with_it.projector_vram, with_it.projector_ram) == \
            ((90 * MiB, 5 * MiB) if on_gpu else (0, 95 * MiB))


def test_auto_gpu_layers_leave_room_for_the_projector(tiny_model):
    profile = load_profile(tiny_model)
    full = plan_profile(profile, detect().with_overrides(vram=4 << 30, ram=16 << 30),
                        n_ctx=512).vram_bytes     # every layer, this machine's GPU backend
    # Free VRAM whose budget (less the 256 MiB margin) just holds every layer, no projector.
    hw = detect().with_overrides(vram=full + 256 * MiB + MiB, ram=16 << 30)
    assert vram_budget(hw) >= full
    bare = plan_profile(profile, hw, n_ctx=512)
    assert bare.fit == "full-gpu"
    planned = plan_profile(profile, hw, n_ctx=512, projector=BIG)
    assert planned.gpu_layers < bare.gpu_layers
    assert planned.vram_bytes <= vram_budget(hw)
    # Room for the projector and a few layers: it goes on the GPU with them.
    roomy = detect().with_overrides(vram=full + 100 * MiB + 256 * MiB + MiB, ram=16 << 30)
    planned = plan_profile(profile, roomy, n_ctx=512, projector=BIG)
    assert planned.fit == "full-gpu" and planned.memory.projector_vram == 90 * MiB


def test_the_cost_of_a_real_projector_file(pair):
    text, mmproj = pair
    from quantdesk.core.gguf import read_header
    cost = projector_cost(mmproj)
    assert cost.weights_bytes == sum(t.n_bytes for t in read_header(mmproj).tensors)
    assert (cost.n_patches, cost.image_side, cost.projector_type) == (64, 56, "gemma3")
    # libmtmd's own warm-up line for this projector is 0.11 MiB (benchmarks/RESULTS.md)
    assert 0.09 * MiB < cost.compute_bytes < 0.13 * MiB
    from quantdesk.core.planner import PlannerError
    with pytest.raises(PlannerError, match="is not a vision projector"):
        projector_cost(text)


def test_the_model_manager_plans_the_projector_it_loads(pair):
    from quantdesk.core.runtime import LoadRequest, ModelManager
    from quantdesk.core.runtime.models import predicted_bytes
    text, mmproj = pair
    manager = ModelManager(hardware=lambda: detect().with_overrides(vram=0))
    try:
        with_it = manager.resolve(LoadRequest(text, n_ctx=512))
        without = manager.resolve(LoadRequest(text, n_ctx=512, mmproj=None))
    finally:
        manager.shutdown()
    cost = projector_cost(mmproj)
    assert with_it.request.mmproj == str(mmproj)
    assert with_it.plan.memory.projector_ram == cost.total_bytes
    assert with_it.plan.ram_bytes - without.plan.ram_bytes == cost.total_bytes
    assert predicted_bytes(with_it) == with_it.plan.ram_bytes + with_it.plan.vram_bytes


def test_quantdesk_plan_shows_the_projector(pair, capsys, tmp_path):
    text, mmproj = pair
    assert main(["plan", str(text), "--ctx", "512", "--vram", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["projector"]["path"] == str(mmproj)
    own = next(o for o in data["options"] if o["this_file"])
    assert own["memory"]["projector_ram"] == data["projector"]["total_bytes"]

    assert main(["plan", str(text), "--ctx", "512", "--vram", "0"]) == 0
    out = capsys.readouterr().out
    assert f"Vision projector {mmproj.name}: " in out and "counted above" in out

    assert main(["plan", str(text), "--ctx", "512", "--mmproj", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["projector"] is None

    alone = tmp_path / "alone.gguf"            # no projector beside it: none, not an error
    shutil.copyfile(text, alone)
    assert main(["plan", str(alone), "--ctx", "512", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["projector"] is None

    assert main(["plan", str(alone), "--mmproj", str(alone)]) == 2
    assert "is not a vision projector" in capsys.readouterr().err
