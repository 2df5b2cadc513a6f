"""The CPU kernels behind kernels.quantize are compiled for the full SIMD width of the machine
(kernels/shared/vector_width.py): numba's CPU target is built after the registry set the feature
string, so on an AVX-512 CPU LLVM drops its prefer-256-bit tuning; elsewhere nothing is set."""
from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
from quantdesk.kernels import registry
registry.available("cpu")          # imports every kernel module, as kernels.quantize does
import llvmlite.binding as llvm
from numba.core.registry import cpu_target
features = cpu_target.target_context.codegen()._tm_features    # what the target was built with
wide = bool(llvm.get_host_cpu_features().get("avx512f"))
print(wide, "-prefer-256-bit" in features.split(","))
"""


def test_numba_target_built_with_full_vector_width():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    host_has_avx512, untuned = out[0] == "True", out[1] == "True"
    assert untuned == host_has_avx512, out


def test_opt_out_keeps_numbas_default_width():
    env = {**os.environ, "QUANTDESK_VECTOR_WIDTH": "256"}
    env.pop("NUMBA_CPU_FEATURES", None)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=300, check=True, env=env).stdout.split()
    assert out[1] == "False", out
