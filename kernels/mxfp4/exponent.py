"""floor(log2f(amax)) as llama.cpp computes it for the MXFP4 scale, without calling log2f in
the kernels.

The C library's log2f rounds: for a float just below 2**(E+1) it can return exactly E+1, so
the floor is not always the binary exponent (glibc: up to ~45 ulps below the power of two for
large |E|). Per binade E (-149 .. 127, denormal binades included) we find, once, the smallest
float whose log2f is >= E+1, with the platform's own log2f (the one libggml-base calls), by
bisection over the top 4096 floats of the binade. floor_log2(x) = E + (bits(x) >= THRESHOLD[E]).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

E_MIN, E_MAX = -149, 127
BAND = 4096


def _log2f():
    for name in (ctypes.util.find_library("m"), ctypes.util.find_library("c"), "ucrtbase"):
        try:
            fn = ctypes.CDLL(name).log2f
        except (OSError, AttributeError, TypeError):
            continue
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return lambda bits: fn(float(np.uint32(bits).view(np.float32)))
    return lambda bits: float(np.log2(np.uint32(bits).view(np.float32)))


def _binade(e: int) -> tuple[int, int]:
    """[first, end) float bits of the binade [2**e, 2**(e+1))."""
    first = (e + 127) << 23 if e >= -126 else 1 << (e + 149)
    end = (e + 128) << 23 if e >= -127 else 1 << (e + 150)
    return first, end


@functools.lru_cache(maxsize=1)
def thresholds() -> np.ndarray:
    """int64 (E_MAX - E_MIN + 1,): per binade, the first float bits whose log2f reaches E+1
    (the binade's end when none does)."""
    log2f = _log2f()
    out = np.empty(E_MAX - E_MIN + 1, np.int64)
    for e in range(E_MIN, E_MAX + 1):
        first, end = _binade(e)
        lo = max(first, end - BAND)
        if log2f(lo) >= e + 1:
            raise RuntimeError(f"log2f rounds up more than {BAND} floats below 2**{e + 1}")
        hi = end                          # invariant: log2f(lo) < e+1, everything >= hi reaches
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if log2f(mid) >= e + 1:
                hi = mid
            else:
                lo = mid
        out[e - E_MIN] = hi
    return out


def floor_log2(amax: np.ndarray) -> np.ndarray:
    """floor(log2f(v)) for positive finite float32 values (numpy; the kernels inline the same)."""
    bits = np.asarray(amax, np.float32).view(np.int32).astype(np.int64)
    normal = bits >= 0x00800000
    e = np.where(normal, (bits >> 23) - 127,
                 np.floor(np.log2(np.maximum(bits, 1))).astype(np.int64) - 149)
    return e + (bits >= thresholds()[e - E_MIN])
