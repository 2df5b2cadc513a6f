"""Quantized hub checkpoints (FP8 / GPTQ / AWQ) → GGUF against the same model stored as BF16:
what dequantizing while streaming costs in time and peak memory.

    .venv/bin/python benchmarks/dequant.py [--type Q8_0] [--threads 2] [--layers 12]
                                           [--embd 768] [--ff 2048] [--vocab 32000]

One Llama-shaped checkpoint (random weights, ~134M parameters at the defaults) is written as BF16,
then its linear layers re-stored as FP8 (128x128 block scales), GPTQ (4-bit, group 128,
act-order) and AWQ (4-bit GEMM, group 128) by the tests' packers; each converts in its own child
process (benchmarks/convert.py's), whose VmHWM is its peak RSS. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _convert_module():
    spec = importlib.util.spec_from_file_location("bench_convert", ROOT / "benchmarks" / "convert.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--type", default="Q8_0")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--embd", type=int, default=768)
    ap.add_argument("--ff", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.pipeline.quantized_ckpt import quantize_checkpoint
    from tests.pipeline.tiny_llama import build_tiny_llama
    bench = _convert_module()
    work = Path(tempfile.mkdtemp(prefix="qd-bench-dequant-"))
    try:
        rows = []
        for method in ("bf16", "fp8", "gptq", "awq"):
            folder = work / method
            weights = build_tiny_llama(folder, n_layer=a.layers, n_embd=a.embd, n_ff=a.ff,
                                       n_head=a.embd // 64, n_head_kv=a.embd // 64 // 3 or 1,
                                       vocab=a.vocab, dtype="BF16")
            if method != "bf16":
                kw = {"group": 128} if method != "fp8" else {}
                quantize_checkpoint(folder, weights, method, n_layer=a.layers, other_dtype="BF16", **kw)
            size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
            got = bench._step("ours", str(folder), str(work / f"{method}.gguf"), a.type,
                              str(a.threads), a.type, "cpu")
            rows.append((method, size, got))
            (work / f"{method}.gguf").unlink()
        mib = 1024 * 1024
        base = rows[0][2]
        print(f"\n### HF checkpoint → {a.type}, {a.layers} layers × {a.embd}/{a.ff}, vocab {a.vocab}, "
              f"{a.threads} threads ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)\n")
        print("| stored as | checkpoint MiB | wall s | vs BF16 | peak RSS MiB |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for method, size, got in rows:
            print(f"| {method} | {size / mib:.0f} | {got['seconds']:.1f} | "
                  f"{got['seconds'] / base['seconds']:.2f}× | {got['peak_rss'] / mib:.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
