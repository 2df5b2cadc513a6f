"""TQ1_0 and TQ2_0: ternary (-1, 0, 1) weights of 256-weight blocks with an fp16 absmax scale
(BitNet b1.58, TriLMs). reference (numpy spec), block_ops (per-block code, one source for CPU
and CUDA), cpu (numba CPU), cuda (numba-cuda). ggml ignores the imatrix for both.
"""
