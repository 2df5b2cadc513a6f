"""`quantdesk eval MODEL [MODEL ...] --reference REF [--text FILE] [--json] [--csv OUT]`."""
from __future__ import annotations

import json
import sys

from quantdesk.core.cli import UserError, fixed_gpu_layers


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="measure what a quant costs: perplexity and KL-divergence vs a reference",
        description="Run the reference (F32/F16/BF16 or Q8_0) and each model over a text in "
                    "context windows, as llama.cpp's perplexity tool does, and report perplexity "
                    "of both, mean and 99th-percentile KL-divergence and top-1 agreement.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="quantized .gguf file(s)")
    p.add_argument("--reference", "-r", required=True, metavar="REF", help="reference .gguf")
    p.add_argument("--text", "-f", metavar="FILE",
                   help="UTF-8 text to score (default: the bundled English sample)")
    p.add_argument("--ctx", type=int, default=512, metavar="N", help="context window (default 512)")
    p.add_argument("--chunks", type=int, default=None, metavar="N", help="score at most N windows")
    p.add_argument("--threads", type=int, default=None, metavar="N")
    p.add_argument("--gpu-layers", type=fixed_gpu_layers, default=0, metavar="N|all",
                   help="layers to offload to the GPU (N or all; default 0, CPU)")
    p.add_argument("--csv", metavar="OUT.csv", help="also write the table as CSV")
    p.add_argument("--json", action="store_true", help="print JSON (one object, or a list)")
    p.set_defaults(func=run)


_shown = {"bar": False}


def _bar(p) -> None:
    _shown["bar"] = True
    sys.stderr.write(f"\r{p.stage:<9} {p.model[:40]:<40} chunk {p.done}/{p.total}  "
                     f"{p.fraction * 100:5.1f}%")
    sys.stderr.flush()


def _end_bar() -> None:
    if _shown["bar"]:
        sys.stderr.write("\n")
        _shown["bar"] = False


def run(args) -> int:
    from quantdesk.core.evaluate import (EvaluationError, compare, read_text, sample_text_path,
                                         write_csv)
    if args.ctx < 16:
        raise UserError("--ctx must be at least 16")
    if args.chunks is not None and args.chunks < 1:
        raise UserError("--chunks must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    try:
        text = read_text(args.text or sample_text_path())
        reports = compare(args.models, args.reference, text, n_ctx=args.ctx,
                          max_chunks=args.chunks, threads=args.threads,
                          n_gpu_layers=args.gpu_layers, progress=_bar)
        if args.csv:
            write_csv(reports, args.csv)
    except EvaluationError as exc:
        _end_bar()
        raise UserError(str(exc)) from None
    _end_bar()
    if args.json:
        data = [r.to_json() for r in reports]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
        return 0
    print(f"reference {reports[0].reference}: PPL {reports[0].ref_ppl:.4f} "
          f"({reports[0].tokens} tokens scored, n_ctx {reports[0].n_ctx})")
    print(f"{'type':<10}{'size MiB':>10}{'bpw':>7}{'PPL':>10}{'KLD mean':>11}{'KLD p99':>10}"
          f"{'top-1':>8}  model")
    for r in reports:
        print(f"{r.file_type:<10}{r.size_bytes / 2**20:>10.1f}{r.bits_per_weight:>7.2f}"
              f"{r.ppl:>10.4f}{r.kld_mean:>11.5f}{r.kld_p99:>10.5f}"
              f"{r.top1_agreement * 100:>7.2f}%  {r.model}")
    return 0
