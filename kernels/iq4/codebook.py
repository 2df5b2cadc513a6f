"""ggml's IQ4_NL codebook (kvalues_iq4nl in ggml-common.h) and the midpoints our numba kernels
pick indices with: for every float32 a, best_index_int8(16, kvalues_iq4nl, a) equals the number
of midpoints <= a (NaN: 15). ggml compares `a - lo < hi - a`; the two agree on every float, which
tests/kernels/test_iq4.py checks exhaustively near each midpoint."""
from __future__ import annotations

import numpy as np

IQ4NL_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10,
                         1, 13, 25, 38, 53, 69, 89, 113], np.float32)
IQ4NL_MIDPOINTS = ((IQ4NL_VALUES[:-1] + IQ4NL_VALUES[1:]) / 2).astype(np.float32)
