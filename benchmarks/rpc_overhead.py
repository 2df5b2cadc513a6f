"""What llama.cpp's RPC protocol costs: tokens/s on this machine alone vs on two loopback workers.

Both sides: the same model, greedy, the same max_tokens and threads, through the engine host
(EngineClient). "local": every layer on this CPU. "workers": every layer on two `quantdesk worker`
processes on 127.0.0.1 (the split the planner makes), so each token's activations cross the
protocol twice per worker; on loopback this measures the protocol's overhead, not a network.
Runs alternate (local, workers, local, ...) after a warm-up each; medians and their ratio are
printed, plus CPU seconds per token (host and workers together) since a shared machine's wall
clock swings.

Then the planner case: workers started with --mem so small that neither could hold the model's
offloaded part alone; the planner splits it over both, and the load's placement (llama.cpp's own
log) is printed beside the plan.

    python benchmarks/rpc_overhead.py [--model PATH] [--tokens 64] [--reps 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

PROMPT = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]
MiB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_worker(threads: int, mem: int | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "quantdesk.core.cli", "worker", "--port", str(port),
           "--threads", str(threads)] + (["--mem", str(mem)] if mem else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if "worker ready" in line:
            return proc, f"127.0.0.1:{port}"
    raise SystemExit(f"worker did not start: {proc.wait()}")


def cpu_seconds(pids) -> float:
    import psutil
    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


def one_run(client, pids, max_tokens: int) -> tuple[float, float]:
    from quantdesk.core.engine import Done, SamplingParams
    before = cpu_seconds(pids)
    done = None
    for event in client.generate(PROMPT, SamplingParams(temperature=0.0, max_tokens=max_tokens,
                                                        seed=1)):
        if isinstance(event, Done):
            done = event
    return done.tokens_per_second, (cpu_seconds(pids) - before) / max(1, done.completion_tokens)


def overhead(model: str, tokens: int, reps: int, threads: int) -> None:
    from quantdesk.core.engine import EngineClient
    from quantdesk.core.runtime import LoadRequest, ModelManager
    workers = [start_worker(threads) for _ in range(2)]
    try:
        endpoints = tuple(e for _, e in workers)
        resolved = ModelManager().resolve(LoadRequest(model, n_ctx=1024, gpu_layers="all",
                                                      n_threads=threads, rpc_servers=endpoints))
        local, remote = EngineClient(), EngineClient()
        local.load(model, n_gpu_layers=0, n_ctx=1024, n_threads=threads)
        r = remote.load(model, n_gpu_layers=resolved.n_gpu_layers, n_ctx=1024, n_threads=threads,
                        rpc_servers=resolved.workers, tensor_split=list(resolved.tensor_split))
        print(f"workers hold: {[(p['endpoint'], p['layers']) for p in r.placement]}")
        sides = {"local": (local, [local.host_pid]),
                 "workers": (remote, [remote.host_pid] + [p.pid for p, _ in workers])}
        rates = {k: [] for k in sides}
        cpu = {k: [] for k in sides}
        for name, (client, pids) in sides.items():   # warm-up
            one_run(client, pids, 8)
        for _ in range(reps):
            for name, (client, pids) in sides.items():
                rate, per_token = one_run(client, pids, tokens)
                rates[name].append(rate)
                cpu[name].append(per_token)
        for name in sides:
            print(f"{name:8s} {statistics.median(rates[name]):7.1f} tokens/s   "
                  f"{statistics.median(cpu[name]) * 1000:6.1f} ms CPU per token   "
                  f"(runs: {', '.join(f'{x:.1f}' for x in rates[name])})")
        ratio = statistics.median(rates["workers"]) / statistics.median(rates["local"])
        cpu_ratio = statistics.median(cpu["workers"]) / statistics.median(cpu["local"])
        print(f"workers/local tokens/s: {ratio:.2f}   CPU per token workers/local: {cpu_ratio:.2f}")
        local.shutdown()
        remote.shutdown()
    finally:
        for p, _ in workers:
            p.kill()


def planner_case(model: str, threads: int) -> None:
    from quantdesk.core.hardware import detect
    from quantdesk.core.planner import load_profile
    from quantdesk.core.planner.split import plan_split
    from quantdesk.core.rpc.wire import WorkerInfo
    from quantdesk.core.runtime import LoadRequest, ModelManager
    profile = load_profile(model)
    roomy = WorkerInfo("one-machine:1", (7, 0, 0), ((1 << 40, 1 << 40),))
    whole = plan_split(profile, detect(), [roomy], n_ctx=1024).parts[0].bytes
    mem = int(whole * 0.75 / MiB) + 1      # advertised; the planner keeps 5% back
    print(f"\nplanner case: the offloaded model needs {whole / MiB:.0f} MiB on one machine; "
          f"two workers offer {mem} MiB each (--mem)")
    workers = [start_worker(threads, mem) for _ in range(2)]
    models = ModelManager()
    try:
        from quantdesk.core.rpc.wire import probe   # before the load: a worker serves one client
        first = probe(workers[0][1])
        alone = plan_split(profile, detect(), [first], n_ctx=1024)
        print(f"one worker alone would take {alone.n_gpu_layers} of {profile.n_layer + 1} layers "
              f"({alone.note})")
        request = LoadRequest(model, n_ctx=1024, gpu_layers="auto", n_threads=threads,
                              rpc_servers=tuple(e for _, e in workers))
        host = models.load(request)
        print(f"plan:     {host.resolved.split.note}")
        print("measured: " + ", ".join(f"{p['endpoint'] or p['device']} {p['layers']} layers "
                                       f"{p['total_bytes'] / MiB:.0f} MiB"
                                       for p in host.result.placement))
    finally:
        models.shutdown()
        for p, _ in workers:
            p.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    model = args.model
    if model is None:
        from quantdesk.core.starter import starter_model_path
        model = str(starter_model_path())
    print(f"model: {os.path.basename(model)}; threads {args.threads}; {time.strftime('%Y-%m-%d %H:%M')}")
    overhead(model, args.tokens, args.reps, args.threads)
    planner_case(model, args.threads)


if __name__ == "__main__":
    main()
