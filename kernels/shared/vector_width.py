"""Let LLVM use 512-bit vectors in the numba CPU kernels on CPUs with AVX-512.

LLVM tunes Intel's AVX-512 server cores to prefer 256-bit vectors ("prefer-256-bit": 512-bit
code can lower the clock for everything else on the core). Our lane loops are long runs of
independent float arithmetic, where the full width measured faster (Q2_K-Q6_K 10-20 %;
benchmarks/RESULTS.md). The bytes do not depend on the width: every lane does the same IEEE
operations in the same order (no fast-math, no FMA contraction).

numba takes the whole feature string from NUMBA_CPU_FEATURES and builds its CPU target at the
first @njit of the process, so registry calls this before it imports the kernel modules (the
path of kernels.quantize). A process that imports a kernel module directly first, or that
already used numba, or where the user set NUMBA_CPU_FEATURES, keeps numba's choice;
QUANTDESK_VECTOR_WIDTH=256 opts out.
"""
from __future__ import annotations

import os
import sys

TUNING = "-prefer-256-bit"


def prefer_512_bit() -> None:
    if os.environ.get("NUMBA_CPU_FEATURES") or os.environ.get("QUANTDESK_VECTOR_WIDTH") == "256":
        return
    registry = sys.modules.get("numba.core.registry")
    if registry is not None and "_toplevel_target_context" in vars(registry.cpu_target):
        return                               # too late for this process: keep numba's choice
    try:
        import llvmlite.binding as llvm
        features = llvm.get_host_cpu_features()
    except Exception:                        # no LLVM host info: leave numba's default
        return
    if not features.get("avx512f"):
        return
    value = features.flatten() + "," + TUNING
    os.environ["NUMBA_CPU_FEATURES"] = value     # numba re-reads its config before compiling
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.CPU_FEATURES = value
