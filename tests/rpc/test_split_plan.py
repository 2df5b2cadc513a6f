"""The planner over several machines (core/planner/split.py), on the starter model's real header."""
from __future__ import annotations

import pytest

from quantdesk.core.hardware import GPU, Hardware
from quantdesk.core.planner import load_profile
from quantdesk.core.planner.split import plan_split
from quantdesk.core.rpc.wire import WorkerInfo

MiB = 1 << 20


def cpu_machine(ram=16 << 30) -> Hardware:
    return Hardware("test cpu", 2, 2, ["AVX2"], ram, ram, [], False)


def workers(*mib) -> list[WorkerInfo]:
    return [WorkerInfo(f"10.0.0.{i + 1}:50052", (7, 0, 0), ((m * MiB, m * MiB),))
            for i, m in enumerate(mib)]


@pytest.fixture(scope="module")
def profile(starter_model):
    return load_profile(starter_model)


def test_roomy_workers_take_every_layer_in_order(profile):
    split = plan_split(profile, cpu_machine(), workers(8192, 8192), n_ctx=2048)
    n = profile.n_layer + 1
    assert split.n_gpu_layers == n and sum(split.tensor_split) == n
    assert all(c > 0 for c in split.tensor_split)          # both machines used
    assert [p.kind for p in split.parts] == ["worker", "worker", "cpu"]
    assert split.parts[-1].layers == 0 and split.fits


def test_model_larger_than_any_one_budget_is_split(profile):
    # What the whole offloaded model needs on one device, from a plan with room to spare:
    one = plan_split(profile, cpu_machine(), workers(100_000), n_ctx=2048).parts[0].bytes
    # each machine holds under 3/4 of it (each also needs its own compute buffer)
    budget = int(one * 0.75 / MiB) + 1
    split = plan_split(profile, cpu_machine(), workers(budget, budget), n_ctx=2048)
    assert split.n_gpu_layers == profile.n_layer + 1, split.note
    for part in split.parts[:2]:
        assert 0 < part.layers and part.bytes <= part.budget < one
    # alone, either machine takes only part of it
    single = plan_split(profile, cpu_machine(), workers(budget), n_ctx=2048)
    assert single.n_gpu_layers < profile.n_layer + 1


def test_output_layer_goes_last_and_too_small_workers_take_nothing(profile):
    # llama.cpp offloads the *last* layers, output matrix first: a worker that cannot hold the
    # output matrix and its compute buffer gets nothing, and the CPU keeps every layer.
    split = plan_split(profile, cpu_machine(), workers(8, 8), n_ctx=2048)
    assert split.n_gpu_layers == 0 and split.tensor_split == (0, 0)
    assert split.parts[-1].layers == profile.n_layer + 1


def test_local_gpu_comes_after_the_workers(profile):
    gpu = GPU("test gpu", "nvidia", 24 << 30, 24 << 30, "cuda")
    hw = Hardware("cpu", 2, 2, ["AVX2"], 16 << 30, 16 << 30, [gpu], True, "cuda")
    split = plan_split(profile, hw, workers(8192), n_ctx=2048, gpu_budget=20 << 30)
    assert [p.kind for p in split.parts] == ["worker", "gpu", "cpu"]
    assert len(split.tensor_split) == 2 and sum(split.tensor_split) == profile.n_layer + 1


def test_the_users_count_is_kept_and_said_not_to_fit(profile):
    split = plan_split(profile, cpu_machine(), workers(8), n_ctx=2048, n_gpu_layers=10)
    assert split.n_gpu_layers == 10 and split.tensor_split == (10,)
    assert not split.fits and split.note.endswith("does not fit")
