"""`quantdesk quantize SRC -t TYPE -o OUT.gguf`: HF folder or GGUF → (quantized) GGUF.
`quantdesk quantize SRC --mmproj -o mmproj-NAME-f16.gguf [-t F16]`: the vision projector instead."""
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
    p.add_argument("-t", "--type", metavar="TYPE", type=str.upper,
                   help="output type: " + ", ".join(FILE_TYPES) + " (with --mmproj: F16 unless "
                        "given, or F32, BF16, Q8_0)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.gguf", help="file to write")
    p.add_argument("--backend", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None, metavar="N")
    p.add_argument("--imatrix", default=None, metavar="FILE", help="importance matrix (.gguf/.dat)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--allow-requantize", action="store_true",
                   help="accept an already-quantized GGUF as source (compounds error)")
    p.add_argument("--mmproj", action="store_true",
                   help="write the vision projector (an mmproj GGUF for image input, llama.cpp's "
                        "second file) of a multimodal HF model folder instead of its language model")
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
    from quantdesk.core.quantize.mix import FILE_TYPES
    from quantdesk.core.runtime.quantize import QuantizeRequest, quantize_job
    if args.mmproj:
        return _run_mmproj(args)
    if args.type is None:
        raise UserError(f"give the output type with -t; one of {', '.join(FILE_TYPES)}")
    if args.type not in FILE_TYPES:
        raise UserError(f"unknown type {args.type}; choose one of {', '.join(FILE_TYPES)}")
    _check_run_options(args)
    _execute(quantize_job(QuantizeRequest(args.source, args.output, args.type,
                                          backend=args.backend, threads=args.threads,
                                          imatrix=args.imatrix, overwrite=args.overwrite,
                                          allow_requantize=args.allow_requantize)))
    return 0


def _run_mmproj(args) -> int:
    from quantdesk.core.convert.mmproj import MMPROJ_FILE_TYPES
    from quantdesk.core.runtime.mmproj import (DEFAULT_PROJECTOR_TYPE, ProjectorRequest,
                                               projector_job, projector_refusal)
    ftype = args.type or DEFAULT_PROJECTOR_TYPE
    if ftype not in MMPROJ_FILE_TYPES:
        raise UserError(f"an mmproj is written as {', '.join(MMPROJ_FILE_TYPES)}, not {ftype}")
    for flag, given in (("--imatrix", args.imatrix), ("--allow-requantize", args.allow_requantize)):
        if given:
            raise UserError(f"{flag} does not apply to --mmproj (the projector is not quantized "
                            "by importance)")
    _check_run_options(args)
    refusal = projector_refusal(args.source)   # one line before any file is opened for writing
    if refusal:
        raise UserError(refusal)
    _execute(projector_job(ProjectorRequest(args.source, args.output, ftype, backend=args.backend,
                                            threads=args.threads, overwrite=args.overwrite)))
    return 0


def _check_run_options(args) -> None:
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    if args.backend == "cuda":
        from quantdesk.kernels import cuda_usable
        if not cuda_usable():
            raise UserError("--backend cuda: no usable CUDA GPU found")


def _execute(job) -> None:
    from quantdesk.core.quantize import ConvertError
    start = time.monotonic()
    try:
        result = job(_bar, None)  # Ctrl-C ends the process; the writer removes its .part
    except ConvertError as exc:
        if _shown["bar"]:
            sys.stderr.write("\n")
        raise UserError(str(exc)) from None
    sys.stderr.write("\n")
    print(f"wrote {result.path} ({result.file_type}, {result.size_bytes / 2**20:.1f} MiB) "
          f"in {time.monotonic() - start:.1f} s")
