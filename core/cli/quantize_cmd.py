"""`quantdesk quantize SRC -t TYPE -o OUT.gguf`: HF folder or GGUF → (quantized) GGUF."""
from __future__ import annotations

import sys
import time

from quantdesk.core.cli import UserError


def register(subparsers) -> None:
    from quantdesk.core.quantize.mix import FILE_TYPES
    p = subparsers.add_parser(
        "quantize", help="convert an HF model or GGUF to a (quantized) GGUF",
        description="Convert a Hugging Face model folder (safetensors) or an F32/F16/BF16 GGUF "
                    "to GGUF of the chosen type, with llama.cpp's per-tensor type mix.")
    p.add_argument("source", metavar="SRC", help="HF model folder or .gguf file")
    p.add_argument("-t", "--type", required=True, metavar="TYPE", type=str.upper,
                   help="output type: " + ", ".join(FILE_TYPES))
    p.add_argument("-o", "--output", required=True, metavar="OUT.gguf", help="file to write")
    p.add_argument("--backend", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None, metavar="N")
    p.add_argument("--imatrix", default=None, metavar="FILE", help="importance matrix (.gguf/.dat)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--allow-requantize", action="store_true",
                   help="accept an already-quantized GGUF as source (compounds error)")
    p.set_defaults(func=run)


_shown = {"bar": False}


def _bar(p) -> None:
    _shown["bar"] = True
    eta = p.eta_s
    eta_text = f"ETA {int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "ETA --:--"
    sys.stderr.write(f"\r[{p.index}/{p.count}] {p.fraction * 100:5.1f}%  {eta_text}  "
                     f"{p.tensor[:40]:<40}")
    sys.stderr.flush()


def run(args) -> int:
    from quantdesk.core.quantize import ConvertError
    from quantdesk.core.quantize.mix import FILE_TYPES
    from quantdesk.core.runtime.quantize import QuantizeRequest, quantize_job
    if args.type not in FILE_TYPES:
        raise UserError(f"unknown type {args.type}; choose one of {', '.join(FILE_TYPES)}")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    if args.backend == "cuda":
        from quantdesk.kernels import cuda_usable
        if not cuda_usable():
            raise UserError("--backend cuda: no usable CUDA GPU found")
    start = time.monotonic()
    try:
        job = quantize_job(QuantizeRequest(args.source, args.output, args.type,
                                           backend=args.backend, threads=args.threads,
                                           imatrix=args.imatrix, overwrite=args.overwrite,
                                           allow_requantize=args.allow_requantize))
        result = job(_bar, None)  # Ctrl-C ends the process; the writer removes its .part
    except ConvertError as exc:
        if _shown["bar"]:
            sys.stderr.write("\n")
        raise UserError(str(exc)) from None
    sys.stderr.write("\n")
    print(f"wrote {result.path} ({result.file_type}, {result.size_bytes / 2**20:.1f} MiB) "
          f"in {time.monotonic() - start:.1f} s")
    return 0
