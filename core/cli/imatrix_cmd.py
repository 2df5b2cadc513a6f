"""`quantdesk imatrix SRC --text FILE -o OUT.gguf`: importance matrix from calibration text."""
from __future__ import annotations

import sys
from pathlib import Path

from quantdesk.core.cli import UserError, fixed_gpu_layers


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "imatrix", help="compute an importance matrix (llama.cpp imatrix GGUF) from a text",
        description="Run calibration text through the model (a GGUF, ideally F16/BF16/F32, or an "
                    "HF folder) and save per-column mean squared activations of every matrix "
                    "multiplication in llama.cpp's imatrix GGUF format, for `quantize --imatrix`.")
    p.add_argument("source", metavar="SRC", help=".gguf model or HF model folder")
    p.add_argument("--text", "-f", metavar="FILE",
                   help="UTF-8 calibration text (default: the bundled English sample)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.gguf", help="file to write")
    p.add_argument("--ctx", type=int, default=512, metavar="N", help="chunk size (default 512)")
    p.add_argument("--chunks", type=int, default=None, metavar="N", help="use at most N chunks")
    p.add_argument("--threads", type=int, default=None, metavar="N")
    p.add_argument("--gpu-layers", type=fixed_gpu_layers, default=0, metavar="N|all",
                   help="layers to offload to the GPU (N or all; default 0, CPU)")
    p.add_argument("--process-output", action="store_true",
                   help="also collect output.weight (as llama-imatrix --process-output)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from quantdesk.core.evaluate import EvaluationError, sample_text_path
    from quantdesk.core.imatrix import ImatrixError
    from quantdesk.core.runtime.quantize import CalibrateRequest, calibrate_job
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise UserError(f"{out} already exists (choose another name or pass --overwrite)")
    if not out.parent.is_dir():
        raise UserError(f"output folder {out.parent} does not exist")
    if args.ctx < 16:
        raise UserError("--ctx must be at least 16")
    text_path = Path(args.text) if args.text else sample_text_path()

    shown = []

    def bar(chunks) -> None:
        shown.append(1)
        sys.stderr.write(f"\rchunk {chunks[0]}/{chunks[1]}")
        sys.stderr.flush()

    job = calibrate_job(CalibrateRequest(args.source, str(text_path), output=str(out),
                                         n_ctx=args.ctx, max_chunks=args.chunks,
                                         threads=args.threads, n_gpu_layers=args.gpu_layers,
                                         process_output=args.process_output))
    try:
        result = job(bar, None)
    except (ImatrixError, EvaluationError) as exc:
        if shown:
            sys.stderr.write("\n")
        raise UserError(str(exc)) from None
    if shown:
        sys.stderr.write("\n")
    imx = result.imatrix
    print(f"wrote {result.path} ({len(imx.entries)} tensors, {imx.chunk_count} chunks of "
          f"{imx.chunk_size} tokens)")
    return 0
