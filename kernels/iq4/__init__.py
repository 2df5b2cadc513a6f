"""IQ4_NL and IQ4_XS: 4-bit indices into ggml's non-linear 16-value codebook (kvalues_iq4nl).

IQ4_NL: 32-weight blocks with an fp16 scale (also llama.cpp's fallback type for rows that are
not a multiple of 256). IQ4_XS: 256-weight super-blocks of eight such blocks whose scales are
6-bit integers against one fp16 super-scale. reference (numpy spec), block_ops (per-block code,
one source for CPU and CUDA), cpu (numba CPU, SIMD across blocks), cuda (numba-cuda).
"""
