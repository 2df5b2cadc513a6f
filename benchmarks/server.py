"""Tokens/s through `quantdesk serve` vs llama-cpp-python called directly in this process.

Same model, same prompt text (a raw /v1/completions prompt, so no chat template on either side),
same settings: greedy, the engine host's sampling defaults, fixed max_tokens, same thread count,
streaming on both sides, one client. Runs alternate (server, direct, ...) after one warm-up each,
so drift in machine load hits both alike; medians are compared.

  * tokens/s end to end: completion tokens / (request sent .. last token), one client;
  * time to first token: request sent .. first streamed token (server overhead = the difference:
    HTTP, JSON, the queue, the host's pipe);
  * tokens per CPU-second (server process + its engine host vs this process on the direct side):
    on a shared, oversubscribed machine wall-clock rates swing by 3x from run to run, the CPU
    work a token costs does not;
  * throughput with 1/4/8 concurrent streaming clients (completion tokens of all / wall time);
    requests for one model take turns (FIFO), so this shows the queue costs nothing extra.

  * with --logprobs N: tokens per CPU-second through the server with logprobs=N vs without
    (what computing llama.cpp's logprobs while sampling costs).

    python benchmarks/server.py [--tokens 64] [--reps 3] [--threads 2] [--logprobs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PROMPT = "Once upon a time, in a small village by the sea, there lived a lighthouse keeper who"
SAMPLING = dict(temperature=0.0, top_p=0.95, top_k=40, min_p=0.05, repeat_penalty=1.1, seed=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(threads: int, home: str):
    port = free_port()
    env = {**os.environ, "QUANTDESK_HOME": home, "HF_HUB_CACHE": os.path.join(home, "hf"),
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "quantdesk.core.cli", "serve", "--port",
                             str(port), "--threads", str(threads), "--ctx", "512", "--ttl", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    root = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(root + "/health", timeout=2).read()
            return proc, root
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def _cpu(proc) -> float:
    """CPU seconds of a process and its children (the server and its engine host)."""
    total = 0.0
    for p in [proc] + proc.children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # noqa: BLE001 - a child that just ended
            pass
    return total


def run_direct(llm, max_tokens: int) -> tuple[int, float, float, float]:
    """(tokens, seconds to the last token, seconds to the first, CPU seconds)."""
    count, first = 0, None
    cpu = time.process_time()
    start = time.perf_counter()
    for chunk in llm.create_completion(PROMPT, max_tokens=max_tokens, stream=True, **SAMPLING):
        if chunk["choices"][0]["text"] and first is None:
            first = time.perf_counter() - start
        if chunk["choices"][0]["finish_reason"] is None:   # the last chunk only says why it ended
            count += 1
    return count, time.perf_counter() - start, first or 0.0, time.process_time() - cpu


def run_server(client, model: str, max_tokens: int, proc=None, logprobs: int | None = None
               ) -> tuple[int, float, float, float]:
    first, usage = None, None
    cpu = _cpu(proc) if proc is not None else 0.0
    start = time.perf_counter()
    extra = {} if logprobs is None else {"logprobs": logprobs}
    stream = client.completions.create(model=model, prompt=PROMPT, max_tokens=max_tokens,
                                       temperature=0.0, seed=1, stream=True,
                                       stream_options={"include_usage": True}, **extra)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text and first is None:
            first = time.perf_counter() - start
        if chunk.usage:
            usage = chunk.usage
    elapsed = time.perf_counter() - start
    cpu = _cpu(proc) - cpu if proc is not None else 0.0
    return usage.completion_tokens, elapsed, first or 0.0, cpu


def throughput(client, model: str, clients: int, max_tokens: int) -> float:
    totals = [0] * clients

    def one(i: int) -> None:
        totals[i] = run_server(client, model, max_tokens)[0]
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(totals) / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--logprobs", type=int, default=None,
                    help="also measure the server with logprobs=N against without")
    args = ap.parse_args()
    import llama_cpp
    import openai

    from quantdesk.core.server.catalog import model_id
    from quantdesk.core.starter import starter_model_path
    path = Path(starter_model_path())   # the server's library in a fresh home: just this one
    home = tempfile.mkdtemp(prefix="qd-bench-")
    proc, root = start_server(args.threads, home)
    try:
        client = openai.OpenAI(base_url=root + "/v1", api_key="x", max_retries=0, timeout=600)
        mid = model_id(path)
        import psutil
        server_proc = psutil.Process(proc.pid)
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=args.threads,
                              n_threads_batch=args.threads, verbose=False)
        run_server(client, mid, 8)        # warm-up: loads the model in the server
        run_direct(llm, 8)
        srv, direct, with_lp = [], [], []
        for _ in range(args.reps):
            srv.append(run_server(client, mid, args.tokens, server_proc))
            direct.append(run_direct(llm, args.tokens))
            if args.logprobs is not None:
                with_lp.append(run_server(client, mid, args.tokens, server_proc, args.logprobs))
        med = lambda runs, f: statistics.median(f(r) for r in runs)   # noqa: E731
        s_rate, d_rate = med(srv, lambda r: r[0] / r[1]), med(direct, lambda r: r[0] / r[1])
        s_ttft, d_ttft = med(srv, lambda r: r[2]), med(direct, lambda r: r[2])
        s_cpu, d_cpu = med(srv, lambda r: r[0] / r[3]), med(direct, lambda r: r[0] / r[3])
        tput = {n: throughput(client, mid, n, args.tokens) for n in (1, 4, 8)}
        out = {"model": path.name, "tokens": args.tokens, "reps": args.reps,
               "threads": args.threads, "server_tok_s": round(s_rate, 1),
               "direct_tok_s": round(d_rate, 1), "ratio": round(s_rate / d_rate, 3),
               "server_tok_per_cpu_s": round(s_cpu, 1), "direct_tok_per_cpu_s": round(d_cpu, 1),
               "cpu_ratio": round(s_cpu / d_cpu, 3),
               "server_ttft_ms": round(s_ttft * 1000, 1), "direct_ttft_ms": round(d_ttft * 1000, 1),
               "ttft_overhead_ms": round((s_ttft - d_ttft) * 1000, 1),
               "throughput_tok_s": {str(n): round(v, 1) for n, v in tput.items()},
               "token_counts": {"server": [r[0] for r in srv], "direct": [r[0] for r in direct]}}
        if with_lp:
            lp_cpu = med(with_lp, lambda r: r[0] / r[3])
            out["logprobs"] = {"n": args.logprobs, "tok_per_cpu_s": round(lp_cpu, 1),
                               "cpu_ratio_vs_without": round(lp_cpu / s_cpu, 3)}
        print(json.dumps(out, indent=2))
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
