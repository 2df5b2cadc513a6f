"""`quantdesk hardware [--json]`: what this machine offers a model (CPU, RAM, GPUs, backend)."""
from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser("hardware", help="show CPU, RAM, GPUs and llama.cpp's GPU backend",
                              description="Detect CPU, SIMD features, RAM, GPUs with free memory "
                                          "and whether the installed llama.cpp can offload.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from quantdesk.core.hardware import detect
    hw = detect()
    if args.json:
        print(json.dumps(hw.to_json(), indent=2))
        return 0
    print(format_hardware(hw))
    return 0


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def format_hardware(hw) -> str:
    lines = [f"CPU        {hw.cpu_name} ({hw.physical_cores} cores, {hw.logical_cores} threads)",
             f"SIMD       {' '.join(hw.simd) or 'unknown'}",
             f"RAM        {_gib(hw.ram_available)} free of {_gib(hw.ram_total)}"]
    for gpu in hw.gpus:
        lines.append(f"GPU        {gpu.name}: {_gib(gpu.free_bytes)} free of {_gib(gpu.total_bytes)}"
                     f" ({gpu.backend}{', unified memory' if gpu.unified else ''})")
    if not hw.gpus:
        lines.append("GPU        none found")
    lines.append(f"llama.cpp  {'GPU offload via ' + hw.llama_backend if hw.gpu_offload_supported else 'CPU only'}")
    return "\n".join(lines)
