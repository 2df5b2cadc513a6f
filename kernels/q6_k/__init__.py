"""Q6_K: 256-weight super-blocks of 16 sub-blocks of 16, 6-bit levels, int8 scales (no min).

reference (numpy spec), block_ops (per-super-block code, one source for CPU and CUDA), cpu
(numba CPU kernels, searches across sub-blocks in shared/qx_lanes), cuda (numba-cuda kernel).
"""
