"""End-to-end HF (BF16 safetensors) → quantized GGUF: our one-pass streaming route against
llama.cpp's route (an F16 GGUF first, then `llama_model_quantize`), same threads, same data.

    .venv/bin/python benchmarks/convert.py [--type Q4_K_M] [--threads 2] [--layers 12]
                                           [--embd 768] [--ff 2048] [--vocab 32000] [--keep DIR]
                                           [--backend cpu|cuda]

A Llama-shaped checkpoint (~134M parameters at the defaults) is built locally with random weights.
Each step runs in its own child process so its peak RSS (VmHWM, Linux) is its own. llama.cpp's
converter (convert_hf_to_gguf.py, torch-based) is not installable here, so the F16 step of its
route is done by our converter; that step is timed and counted in llama.cpp's route.
Prints a Markdown table for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a child: one step, then prints {"seconds": s, "peak_rss": bytes}.
_CHILD = r"""
import json, sys, time
step, src, dst, qtype, threads, warm, backend = sys.argv[1:8]
threads = int(threads)
compile_s = 0.0
if warm:  # compile the numba kernels first (once per app session), timed apart
    import numpy as np
    from quantdesk import kernels
    t0 = time.perf_counter()
    for q in warm.split(","):
        kernels.quantize(np.ones((8, 256), np.float32), q, backend=backend, threads=threads)
    compile_s = time.perf_counter() - t0
t0 = time.perf_counter()
if step == "ours":
    from quantdesk.core.quantize import quantize_model
    quantize_model(src, dst, qtype, backend=backend, threads=threads)
elif step == "llama":
    import ctypes, llama_cpp
    from quantdesk.core.quantize import FILE_TYPES
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype, p.nthread = FILE_TYPES[qtype].ftype, threads
    assert llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) == 0
seconds = time.perf_counter() - t0
# VmHWM is this process image's own peak (ru_maxrss would include the parent's, across exec)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "compile": compile_s, "peak_rss": hwm * 1024}))
"""


def _step(*args: str) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"step {args[0]} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build(folder: Path, a) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.pipeline.tiny_llama import build_tiny_llama
    build_tiny_llama(folder, n_layer=a.layers, n_embd=a.embd, n_ff=a.ff, n_head=a.embd // 64,
                     n_head_kv=a.embd // 64 // 3 or 1, vocab=a.vocab, dtype="BF16")
    n = a.vocab * a.embd * 2 + a.layers * (2 * a.embd * a.embd + 2 * a.embd * (a.embd // 3)
                                           + 3 * a.embd * a.ff)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--type", default="Q4_K_M")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--embd", type=int, default=768)
    ap.add_argument("--ff", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--backend", choices=("cpu", "cuda"), default="cpu", help="our kernels")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: temp)")
    a = ap.parse_args()

    work = a.keep or Path(tempfile.mkdtemp(prefix="qd-bench-convert-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        hf = work / "hf"
        if not (hf / "config.json").exists():
            build(hf, a)
        from quantdesk.core.convert import open_source
        from quantdesk.core.quantize import tensor_types
        src = open_source(hf)
        n_params = sum(int(__import__("math").prod(t.shape)) for t in src.tensors)
        planned = set(tensor_types([(t.name, t.shape, t.dtype) for t in src.tensors], a.type,
                                   src.params).values()) - {"F32", "F16", "BF16"}
        from quantdesk.kernels import registry
        missing = planned - {q for q, _ in registry.available(a.backend)}
        if missing:
            raise SystemExit(f"no CPU kernel registered yet for {', '.join(sorted(missing))}; "
                             f"try --type Q8_0")
        warm = ",".join(sorted(planned))
        f16 = work / "model-f16.gguf"
        for p in (work / "ours.gguf", work / "llama.gguf", f16):
            p.unlink(missing_ok=True)
        ours = _step("ours", str(hf), str(work / "ours.gguf"), a.type, str(a.threads), warm,
                     a.backend)
        conv = _step("ours", str(hf), str(f16), "F16", str(a.threads), "", "cpu")
        quant = _step("llama", str(f16), str(work / "llama.gguf"), a.type, str(a.threads), "", "cpu")
        io_s = time.perf_counter()
        for p in (hf / "model.safetensors", work / "ours.gguf"):  # read-in + write-out floor
            with open(p, "rb") as f:
                while f.read(1 << 24):
                    pass
        io_s = time.perf_counter() - io_s
        theirs_s = conv["seconds"] + quant["seconds"]
        theirs_rss = max(conv["peak_rss"], quant["peak_rss"])
        mib = 1024 * 1024
        print(f"\n### HF BF16 → {a.type}, {n_params / 1e6:.0f}M parameters, {a.threads} threads "
              f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores)\n")
        print("| route | wall s | peak RSS MiB |")
        print("| --- | ---: | ---: |")
        print(f"| ours ({a.backend}): HF → {a.type} in one pass | {ours['seconds']:.1f} | "
              f"{ours['peak_rss'] / mib:.0f} |")
        print(f"| llama.cpp: HF → F16 GGUF ({conv['seconds']:.1f} s, our converter) + "
              f"llama_model_quantize ({quant['seconds']:.1f} s) | {theirs_s:.1f} | "
              f"{theirs_rss / mib:.0f} |")
        print(f"\nspeed-up ours vs llama.cpp route: {theirs_s / ours['seconds']:.2f}×; "
              f"peak RSS ratio {ours['peak_rss'] / theirs_rss:.2f}; "
              f"file read (cached) of input + output: {io_s:.1f} s; our kernels' one-time JIT "
              f"compile (first use in a session, not in the times above): {ours['compile']:.1f} s")
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
