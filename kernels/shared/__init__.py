"""Building blocks the kernel families share.

- numpy reference (the spec): reference_ops (ggml's rounding, fp16, C-order sums, make_qx /
  make_q3 searches), reference_searches (make_qkx2/qkx3, make_qp_quants).
- one source for numba CPU and CUDA: ops (scalar ggml building blocks; `jit_for` makes them njit,
  or CUDA device functions when cuda_common.load_cuda_twin loads a module again as `*_cuda`).
- numba CPU: cpu_bits (float bit intrinsics), cpu_common (threads, row statistics, the
  super-block-minor lane loader), qx_lanes (make_qx searches across many sub-blocks at once,
  SIMD), qkx_lanes (make_qkx2/qkx3 across sub-blocks), vector_width (512-bit SIMD on AVX-512).
- numba-cuda: cuda_common (twin loader, launches, device inputs).
- cache_guard: clears numba's cache when any kernels source changes.
"""
