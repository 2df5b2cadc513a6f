"""IQ1_S and IQ1_M: 1.56 / 1.75 bits per weight, groups of eight ternary weights picked from
ggml's 2048-entry grid (grid.py: the grid from gguf-py, and the on-grid map and off-grid
neighbour lists ggml's iq2xs_init_impl builds, built once here). reference (numpy spec),
block_ops (per-block code, one source for CPU and CUDA), cpu (numba CPU, the split search SIMD
across blocks), cuda (numba-cuda). IQ1_S needs an importance matrix, as in llama.cpp.
"""
