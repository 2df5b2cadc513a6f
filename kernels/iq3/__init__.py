"""IQ3_XXS and IQ3_S: 3-bit grid quantization (ggml's iq3 grids: 256 points for IQ3_XXS, 512 for
IQ3_S; each point four odd values 1..15), 256-weight super-blocks of eight 32-weight blocks with
4-bit block scales against one fp16 scale. grid (the grids as data; maps and neighbour lists
built once), reference (numpy spec), block_ops (per-super-block code, one source for CPU and
CUDA), cpu (numba CPU), cuda (numba-cuda).
"""
