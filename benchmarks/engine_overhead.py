"""Tokens/s through Quantdesk's engine host vs llama-cpp-python called directly in this process.

Same model, same prompt tokens (the model's chat template), same settings: greedy, fixed
max_tokens, same thread count, streaming on both sides. Runs alternate (host, direct, host, ...)
after one warm-up each, so drift in machine load hits both sides alike. The ratio of medians is
what the host costs: pickling tokens over a pipe and the client's poll loop.

On a shared, oversubscribed machine wall-clock rates swing by 10% from run to run, so the script
also prints tokens per CPU-second (both processes' CPU time on the host side, this process's on
the direct side): that ratio is what the overhead costs in work, whatever the neighbours do.

    python benchmarks/engine_overhead.py [--model PATH] [--tokens 128] [--reps 5] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

PROMPT = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]


def run_direct(llm, tokens, stop, max_tokens: int) -> tuple[int, float, float]:
    """One streamed greedy completion straight through llama-cpp-python: (tokens, s, cpu s)."""
    count = 0

    def counter(input_ids, logits):  # the same per-token hook the host uses to count
        nonlocal count
        count = max(count, len(input_ids) - len(tokens) + 1)
        return False

    from llama_cpp import StoppingCriteriaList
    start, cpu = time.perf_counter(), time.process_time()
    for _chunk in llm.create_completion(list(tokens), max_tokens=max_tokens, temperature=0.0,
                                        top_p=0.95, top_k=40, min_p=0.05, repeat_penalty=1.1,
                                        seed=1, stop=stop, stream=True,
                                        stopping_criteria=StoppingCriteriaList([counter])):
        pass
    return count, time.perf_counter() - start, time.process_time() - cpu


def _cpu(proc) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def run_host(client, max_tokens: int) -> tuple[int, float, float]:
    import psutil
    from quantdesk.core.engine import Done, SamplingParams
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=1)
    host = psutil.Process(client.host_pid)
    start, cpu, host_cpu = time.perf_counter(), time.process_time(), _cpu(host)
    done = None
    for event in client.generate(PROMPT, params):
        if isinstance(event, Done):
            done = event
    wall = time.perf_counter() - start
    return done.completion_tokens, wall, time.process_time() - cpu + _cpu(host) - host_cpu


def _send_tokens(events, n: int) -> None:
    for _ in range(n):
        events.send(("token", " lighthouse"))
    events.send(("done", {}))


def pipe_cost(n: int = 20000) -> float:
    """Seconds per token event for the host's transport alone (spawned child -> Pipe -> poll+recv)."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_send_tokens, args=(send, n))
    child.start()
    send.close()
    recv.poll(60)                     # the child is up and sending: start the clock
    start = time.perf_counter()
    while True:
        while not recv.poll(0.25):
            pass
        if recv.recv()[0] == "done":
            break
    seconds = time.perf_counter() - start
    child.join()
    return seconds / n


def cpu_name() -> str:
    try:
        import subprocess
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown CPU"


def main() -> int:
    from quantdesk.core.engine import EngineClient
    from quantdesk.core.engine.client import default_threads
    from quantdesk.core.engine.prompt import chat_template_prompt, completion_prompt
    from quantdesk.core.starter import starter_model_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="GGUF (default: the starter model)")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()
    model = args.model or str(starter_model_path())

    from llama_cpp import Llama
    llm = Llama(model_path=model, n_ctx=args.ctx, n_threads=args.threads,
                n_threads_batch=args.threads, verbose=False)
    template = llm.metadata.get("tokenizer.chat_template")
    if template:
        m = llm._model
        prompt = chat_template_prompt(template, PROMPT, bos_token=m.token_get_text(llm.token_bos()),
                                      eos_token=m.token_get_text(llm.token_eos()))
    else:
        prompt = completion_prompt(PROMPT)
    tokens = llm.tokenize(prompt.text.encode(), add_bos=prompt.add_bos, special=True)

    client = EngineClient()
    loaded = client.load(model, n_ctx=args.ctx, n_threads=args.threads)
    try:
        run_host(client, args.tokens)                       # warm-up both sides
        run_direct(llm, tokens, prompt.stop, args.tokens)
        host_rates, direct_rates, host_cpu_rates, direct_cpu_rates = [], [], [], []
        for rep in range(args.reps):
            n_h, s_h, c_h = run_host(client, args.tokens)
            n_d, s_d, c_d = run_direct(llm, tokens, prompt.stop, args.tokens)
            if n_h != n_d:
                print(f"warning: host made {n_h} tokens, direct {n_d}", file=sys.stderr)
            host_rates.append(n_h / s_h)
            direct_rates.append(n_d / s_d)
            host_cpu_rates.append(n_h / c_h)
            direct_cpu_rates.append(n_d / c_d)
            print(f"rep {rep + 1}: host {n_h} tok {s_h:.3f}s = {n_h / s_h:6.2f} tok/s "
                  f"({n_h / c_h:6.2f}/cpu-s) | direct {n_d} tok {s_d:.3f}s = {n_d / s_d:6.2f} tok/s "
                  f"({n_d / c_d:6.2f}/cpu-s) | ratio {(n_h / s_h) / (n_d / s_d):.3f}", flush=True)
    finally:
        client.shutdown()
    h, d = statistics.median(host_rates), statistics.median(direct_rates)
    print(f"model: {os.path.basename(model)}  threads: {args.threads}  max_tokens: {args.tokens}  "
          f"ctx: {args.ctx}  cpu: {cpu_name()}  (host load {loaded.load_seconds:.2f}s)")
    print(f"median tokens/s: host {h:.2f}, direct {d:.2f}; ratio host/direct = {h / d:.3f}")
    per_token = pipe_cost()
    print(f"transport alone: {per_token * 1e6:.1f} us per token event = "
          f"{per_token * d * 100:.3f}% of a direct token's time")
    pairs = [a / b for a, b in zip(host_rates, direct_rates)]
    print(f"geometric mean of the {len(pairs)} paired ratios: {statistics.geometric_mean(pairs):.3f}")
    hc, dc = statistics.median(host_cpu_rates), statistics.median(direct_cpu_rates)
    print(f"median tokens per CPU-second: host {hc:.2f}, direct {dc:.2f}; "
          f"ratio host/direct = {hc / dc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
