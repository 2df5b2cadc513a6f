"""Q3_K: 256-weight super-blocks of 16 sub-blocks of 16, 3-bit levels, 6-bit scales (no min).

reference (numpy spec), block_ops (per-super-block code, one source for CPU and CUDA), cpu_lanes
(make_q3_quants across sub-blocks, SIMD) + cpu (numba CPU kernels), cuda (numba-cuda kernel).
"""
