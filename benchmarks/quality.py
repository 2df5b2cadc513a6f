"""What each quant type costs on SmolLM2-135M, with and without an importance matrix.

    python benchmarks/quality.py [--types Q8_0,Q6_K,Q4_K_M,Q3_K_M,Q2_K] [--imatrix-types Q4_K_M,Q3_K_M]
                                 [--ctx 128] [--chunks 8] [--quantizer llama|quantdesk] [--threads 2]

The reference is the starter model (Q4_1) dequantized to F32 by our pipeline; quants are made
from it by llama.cpp's llama_model_quantize (default) or by our own pipeline. Scored on the bundled
sample text (resources/calibration/sample_en.txt); the imatrix is computed on the held-out test
text (tests/evaluate/data/heldout_en.txt) — the reverse of the tests, so neither sees its own
calibration. Prints a Markdown table (size, bits/weight, PPL, KLD mean/p99, top-1), then the time
of our reference pass against llama-cpp-python's high-level Llama computing the same perplexity
in this process (ratio only: the machine may be shared).
"""
from __future__ import annotations

import argparse
import ctypes
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def llama_quantize(src: Path, dst: Path, ftype: str, imatrix: dict | None, threads: int) -> Path:
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.nthread = threads
    keep = []
    if imatrix:
        arr = (llama_cpp.llama_model_imatrix_data * (len(imatrix) + 1))()
        for i, (name, v) in enumerate(imatrix.items()):
            v = np.ascontiguousarray(v, dtype=np.float32)
            keep.append(v)
            arr[i].name, arr[i].size = name.encode(), v.size
            arr[i].data = v.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        params.imatrix = arr
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)):
        raise SystemExit(f"llama_model_quantize failed for {ftype}")
    return dst


def peer_perplexity(path: Path, text: str, n_ctx: int, n_chunks: int, threads: int) -> float:
    import llama_cpp
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True,
                          n_threads=threads, verbose=False)
    tokens = llm.tokenize(text.encode(), add_bos=True, special=False)
    add_bos = llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model))
    first, nll = n_ctx // 2, []
    for c in range(min(n_chunks, len(tokens) // n_ctx)):
        window = list(tokens[c * n_ctx:(c + 1) * n_ctx])
        if add_bos:
            window[0] = llm.token_bos()
        llm.reset()
        llm.eval(window)
        logits = np.array(llm.scores[first:n_ctx - 1], dtype=np.float64)
        tgt = tokens[c * n_ctx + first + 1:(c + 1) * n_ctx]
        m = logits.max(1)
        nll.extend(m + np.log(np.exp(logits - m[:, None]).sum(1)) - logits[np.arange(len(tgt)), tgt])
    llm.close()
    return float(np.exp(np.mean(nll)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--types", default="Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q3_K_M,Q2_K")
    ap.add_argument("--imatrix-types", default="Q4_K_M,Q3_K_M")
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quantizer", choices=("llama", "quantdesk"), default="llama")
    ap.add_argument("--json-out", metavar="FILE", help="also save the reports as JSON")
    args = ap.parse_args()

    from quantdesk.core.evaluate import compare, read_text
    from quantdesk.core.imatrix import compute_imatrix, load_imatrix, save_imatrix
    from quantdesk.core.quantize import quantize_model
    from quantdesk.core.starter import starter_model_path

    text = read_text(ROOT / "resources" / "calibration" / "sample_en.txt")
    calib = read_text(ROOT / "tests" / "evaluate" / "data" / "heldout_en.txt")
    with tempfile.TemporaryDirectory(prefix="qd-quality-") as tmp:
        tmp = Path(tmp)
        ref = quantize_model(starter_model_path(), tmp / "F32.gguf", "F32",
                             allow_requantize=True).path
        t0 = time.perf_counter()
        imx_path = save_imatrix(tmp / "imx.gguf", compute_imatrix(ref, calib, n_ctx=args.ctx,
                                                                  threads=args.threads))
        imx_s = time.perf_counter() - t0
        imx = load_imatrix(imx_path)

        def make(ft: str, with_imx: bool) -> Path:
            out = tmp / f"{ft}{'-imx' if with_imx else ''}.gguf"
            if args.quantizer == "llama":
                return llama_quantize(ref, out, ft, imx if with_imx else None, args.threads)
            return quantize_model(ref, out, ft, imatrix=imx_path if with_imx else None).path

        jobs = [(t, False) for t in args.types.split(",") if t] + \
               [(t, True) for t in args.imatrix_types.split(",") if t]
        models = [make(t, w) for t, w in jobs]
        t0 = time.perf_counter()
        reports = compare(models, ref, text, n_ctx=args.ctx, max_chunks=args.chunks,
                          threads=args.threads, cache_dir=tmp / "cache")
        total_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        peer = peer_perplexity(ref, text, args.ctx, args.chunks, args.threads)
        peer_s = time.perf_counter() - t0

    if args.json_out:
        import json
        Path(args.json_out).write_text(json.dumps(
            [dict(r.to_json(), imatrix=w) for (_, w), r in zip(jobs, reports)], indent=1))
    print(f"SmolLM2-135M, reference F32 (dequantized Q4_1), quantizer: {args.quantizer}; "
          f"text sample_en.txt, n_ctx {args.ctx}, {reports[0].tokens} scored tokens; "
          f"imatrix from heldout_en.txt ({imx_s:.0f} s)\n")
    print("| type | imatrix | size MiB | bits/weight | PPL | PPL ratio | KLD mean | KLD p99 | top-1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (ft, w), r in zip(jobs, reports):
        print(f"| {ft} | {'yes' if w else 'no'} | {r.size_bytes / 2**20:.1f} | "
              f"{r.bits_per_weight:.2f} | {r.ppl:.4f} | {r.ppl_ratio:.4f} | {r.kld_mean:.5f} | "
              f"{r.kld_p99:.5f} | {r.top1_agreement * 100:.2f}% |")
    print(f"\nreference PPL: ours {reports[0].ref_ppl:.5f}, llama-cpp-python Llama {peer:.5f} "
          f"(diff {abs(reports[0].ref_ppl / peer - 1) * 100:.4f}%)")
    per_model = total_s / (len(models) + 1)
    print(f"time per model pass (child process incl. start and load): {per_model:.1f} s; "
          f"llama-cpp-python in-process reference pass: {peer_s:.1f} s; "
          f"ratio {per_model / peer_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
