"""Throughput of our quantization kernels against llama.cpp's ggml_quantize_chunk, same rows,
same thread count, same process; every result is also checked byte for byte.

    python benchmarks/kernels.py [--rows 256] [--cols 4096] [--threads N] [--imatrix]
                                 [--types Q4_K,Q6_K] [--repeat 3] [--cuda]

Prints, per type: our CPU throughput (M weights/s), llama.cpp's at the same thread count (its
rows split over a thread pool: ctypes releases the GIL), the ratio, each by wall clock and by
process CPU time, and CUDA when a GPU is usable
(kernel time including host<->device copies). Kernels are compiled (warmed up) first. Types
llama.cpp refuses without an importance matrix (IQ2_XXS, IQ2_XS) get the random one of
--imatrix even without the flag (marked "+im" in the type column).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


def _interleaved(fns, repeat: int) -> list[tuple[float, float, np.ndarray]]:
    """Best wall-clock and best process CPU time of each function over `repeat` rounds, running
    them alternately so that a shared, busy machine slows them alike; returns (wall seconds,
    CPU seconds of all this process's threads, last result) per function. On a loaded machine
    CPU time is the steadier measure (time spent waiting for a core is not counted)."""
    best = [float("inf")] * len(fns)
    best_cpu = [float("inf")] * len(fns)
    outs = [None] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            c0, t0 = time.process_time(), time.perf_counter()
            outs[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t0)
            best_cpu[k] = min(best_cpu[k], time.process_time() - c0)
    return list(zip(best, best_cpu, outs))


def weights_like(n_rows: int, n_cols: int, seed: int = 0) -> np.ndarray:
    """Rows that look like LLM weights: student-t (heavy tails), per-row scale, a few outliers."""
    rng = np.random.default_rng(seed)
    x = rng.standard_t(5.0, (n_rows, n_cols)) * 0.02
    x *= rng.uniform(0.5, 2.0, (n_rows, 1))
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, flat.size // 10000)] *= 30.0
    return np.ascontiguousarray(x, dtype=np.float32)


def main(argv=None) -> int:
    from quantdesk import kernels
    from quantdesk.kernels import oracle, registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--types", default=",".join(kernels.QUANT_TYPES))
    ap.add_argument("--imatrix", action="store_true",
                    help="use a random importance matrix (always for the types that need one)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cuda", action="store_true", help="also time CUDA (default: when usable)")
    args = ap.parse_args(argv)

    rows = weights_like(args.rows, args.cols)
    random_imatrix = (10.0 ** np.random.default_rng(1).uniform(-2, 1, args.cols)).astype(np.float32)
    imatrix = random_imatrix if args.imatrix else None
    n = rows.size
    use_cuda = args.cuda or kernels.cuda_usable()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"threads={args.threads}, rows={args.rows}x{args.cols} ({n / 1e6:.1f} M weights), "
          f"imatrix={'yes' if imatrix is not None else 'no'}, python {sys.version.split()[0]}")
    print("# wall: M weights per second of wall clock; cpu-s: per second of process CPU time")
    head = (f"{'type':7} {'ours wall':>10} {'llama wall':>11} {'ratio':>7} {'ours cpu-s':>11} "
            f"{'llama cpu-s':>12} {'ratio':>7}  {'bytes':>9}")
    if use_cuda:
        head += f" {'cuda M/s':>10} {'cuda ratio':>10}  {'cuda bytes':>10}"
    print(head)
    plain = imatrix
    for qtype in args.types.split(","):
        if (qtype, "cpu") not in registry.available("cpu"):
            print(f"{qtype:7} (no cpu kernel registered)")
            continue
        forced = plain is None and kernels.get_format(qtype).needs_imatrix
        imatrix = random_imatrix if forced else plain
        warm = rows[: max(1, 4096 // args.cols) * 2]
        kernels.quantize(warm, qtype, backend="cpu", imatrix=imatrix, threads=args.threads)
        oracle.ggml_quantize(warm, qtype, imatrix)   # ggml builds the IQ grids/maps on first use
        (t_ours, c_ours, ours), (t_ref, c_ref, ref) = _interleaved([
            lambda: kernels.quantize(rows, qtype, backend="cpu", imatrix=imatrix,
                                     threads=args.threads),
            lambda: oracle.ggml_quantize(rows, qtype, imatrix, threads=args.threads)],
            args.repeat)
        same = "identical" if np.array_equal(ours, ref) else "DIFFER"
        label = qtype + "+im" if forced else qtype
        line = (f"{label:6} {n / t_ours / 1e6:10.1f} {n / t_ref / 1e6:11.1f} "
                f"{t_ref / t_ours:6.2f}x {n / c_ours / 1e6:11.1f} {n / c_ref / 1e6:12.1f} "
                f"{c_ref / c_ours:6.2f}x  {same:>9}")
        if use_cuda and (qtype, "cuda") in registry.available("cuda"):
            kernels.quantize(warm, qtype, backend="cuda", imatrix=imatrix)
            [(t_cuda, _, got)] = _interleaved([lambda: kernels.quantize(
                rows, qtype, backend="cuda", imatrix=imatrix)], args.repeat)
            cuda_same = "identical" if np.array_equal(got, ref) else "DIFFER"
            line += f" {n / t_cuda / 1e6:10.1f} {t_ref / t_cuda:9.1f}x  {cuda_same:>10}"
        if imatrix is not None and not args.imatrix:
            line += "  (with the random imatrix: llama.cpp needs one)"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
