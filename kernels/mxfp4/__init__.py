"""MXFP4: 32-weight blocks of e2m1 values (kvalues_mxfp4) under one e8m0 power-of-two scale.
reference (numpy spec), exponent (ggml's floor(log2f(amax)) as a cached table), block_ops
(per-block code, one source for CPU and CUDA), cpu (numba CPU), cuda (numba-cuda). ggml ignores
the imatrix.
"""
