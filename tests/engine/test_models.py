"""ModelManager: "auto" planned once for the context really loaded, one host per model and
settings (also when several threads ask at once), the least recently used model makes room."""
from __future__ import annotations

import threading

import psutil
import pytest

from quantdesk.core.hardware import detect
from quantdesk.core.runtime import (LoadRequest, ModelLoaded, ModelLoading, ModelManager,
                                    ModelPlanned, ModelUnloaded)

MiB = 1 << 20


def with_vram(mib: int):
    """Plan as if the best GPU had `mib` free (0: no GPU), the same on every test machine."""
    return lambda: detect().with_overrides(vram=mib * MiB)


def test_auto_takes_the_planners_layers_for_the_context_asked(starter_model):
    from quantdesk.core.planner import plan_for_model
    request = LoadRequest(starter_model, n_ctx=1024, gpu_layers="auto")
    resolved = ModelManager(hardware=with_vram(300)).resolve(request)
    hardware = with_vram(300)()
    plan = plan_for_model(starter_model, n_ctx=1024, hardware=hardware, lower_ctx=False)
    assert resolved.plan.fit == "partial" and 0 < plan.gpu_layers < plan.n_layer
    assert resolved.n_gpu_layers == plan.gpu_layers == resolved.plan.gpu_layers
    assert resolved.note == "auto: partial" and resolved.plan.n_ctx == 1024


def test_the_plan_is_for_the_context_that_is_loaded_never_a_smaller_one(starter_model):
    tight = ModelManager(hardware=lambda: detect().with_overrides(vram=0, ram=150 * MiB))
    resolved = tight.resolve(LoadRequest(starter_model, n_ctx=8192))
    assert resolved.plan.n_ctx == resolved.n_ctx == 8192   # no quiet halving to make it "fit"
    assert resolved.plan.fit == "no-fit" and resolved.n_gpu_layers == 0


def test_manual_and_all_layers_are_planned_as_asked(starter_model):
    manager = ModelManager(hardware=with_vram(300))
    manual = manager.resolve(LoadRequest(starter_model, n_ctx=1024, gpu_layers=3))
    every = manager.resolve(LoadRequest(starter_model, n_ctx=1024, gpu_layers=-1))
    assert (manual.n_gpu_layers, manual.plan.gpu_layers, manual.note) == (3, 3, "")
    assert every.request.gpu_layers == "all" and every.n_gpu_layers == -1
    assert every.plan.gpu_layers == every.plan.n_layer + 1


def test_an_unplannable_file_stays_on_the_cpu_and_says_why(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all" * 10)
    resolved = ModelManager().resolve(LoadRequest(junk))
    assert resolved.n_gpu_layers == 0 and resolved.plan is None
    assert resolved.note.startswith("auto: CPU only (no plan: ") and resolved.plan_error


@pytest.mark.slow
def test_one_host_for_one_model_and_settings_even_from_many_threads(starter_model):
    manager = ModelManager(hardware=with_vram(0))
    events, hosts, errors = [], [], []
    manager.subscribe(events.append)
    request = LoadRequest(starter_model, n_ctx=512, gpu_layers=0, n_threads=1)

    def load():
        try:
            hosts.append(manager.load(request))
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors and len(hosts) == 4 and len({id(h) for h in hosts}) == 1
        assert [type(e) for e in events[:3]] == [ModelLoading, ModelPlanned, ModelLoaded]
        assert [e.reused for e in events if isinstance(e, ModelLoaded)] == [False] + [True] * 3
        host = hosts[0]
        assert host.result.n_ctx == 512 and psutil.pid_exists(host.pid)

        # "auto" that the planner answers with the loaded host's layer count is the same load.
        same = manager.load(LoadRequest(starter_model, n_ctx=512, gpu_layers="auto",
                                        n_threads=1))
        assert same is host and manager.loaded() == [host]

        # Another context is another load; with one model at a time the old host ends first.
        other = manager.load(LoadRequest(starter_model, n_ctx=1024, gpu_layers=0, n_threads=1))
        assert other is not host and manager.loaded() == [other]
        assert not psutil.pid_exists(host.pid or -1) and host.pid is None
        assert any(isinstance(e, ModelUnloaded) for e in events)
        assert manager.unload(starter_model) == 1 and manager.loaded() == []
    finally:
        manager.shutdown()


@pytest.mark.slow
def test_max_models_keeps_several_and_unloads_the_least_recently_used(starter_model):
    manager = ModelManager(max_models=2, hardware=with_vram(0))
    small, medium, large = (LoadRequest(starter_model, n_ctx=n, gpu_layers=0, n_threads=1)
                            for n in (256, 512, 768))
    try:
        a, b = manager.load(small), manager.load(medium)
        assert manager.loaded() == [a, b] and a.pid != b.pid
        assert manager.load(small) is a              # used again: now b is the oldest
        c = manager.load(large)
        assert manager.loaded() == [a, c] and not b.alive
    finally:
        manager.shutdown()
    assert manager.loaded() == [] and not a.alive and not c.alive


@pytest.mark.slow
def test_a_memory_budget_keeps_what_fits_and_unloads_the_least_recently_used(
        starter_model, gemma_model):
    from quantdesk.core.runtime.models import predicted_bytes
    smol, gemma = (LoadRequest(p, n_ctx=256, gpu_layers=0, n_threads=1)
                   for p in (starter_model, gemma_model))
    probe = ModelManager(hardware=with_vram(0))
    need = {r: predicted_bytes(probe.resolve(r)) for r in (smol, gemma)}
    assert need[gemma] > need[smol] > 0
    manager = ModelManager(max_models=3, hardware=with_vram(0),
                           memory_budget=need[gemma] + need[smol] // 2)   # one at a time
    try:
        a = manager.load(smol)
        b = manager.load(gemma)                      # both would not fit: smol goes
        assert manager.loaded() == [b] and not a.alive
        assert manager.memory_in_use() == need[gemma]
        c = manager.load(smol)
        assert manager.loaded() == [c] and not b.alive
    finally:
        manager.shutdown()
    roomy = ModelManager(max_models=3, hardware=with_vram(0),
                         memory_budget=need[gemma] + need[smol])
    try:
        a, b = roomy.load(smol), roomy.load(gemma)
        assert roomy.loaded() == [a, b] and roomy.memory_in_use() == sum(need.values())
    finally:
        roomy.shutdown()
