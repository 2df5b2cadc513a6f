"""Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: blocks of 32 weights (ggml's "legacy" quants).

reference (numpy spec), block_ops (per-block code, one source for CPU and CUDA), cpu_lanes
(SIMD across blocks) + cpu (numba CPU kernels), cuda (numba-cuda kernels).
"""
