"""IQ2_XXS, IQ2_XS and IQ2_S: 2-bit E8-lattice grids (ggml's "i-quants" at 2.06, 2.31, 2.5 bpw).

Each 8-weight octet stores |x| as one point of a grid (256 / 512 / 1024 points, grid_data.py)
plus sign bits, scaled per group (32 weights: IQ2_XXS, 16: IQ2_XS / IQ2_S) by 4-bit scales
against one fp16 super-scale per 256 weights. The search tries 13 or 19 trial scales per group;
an octet off the grid moves to the best of its precomputed neighbours (grid.py builds ggml's
kmap and neighbour lists, once, cached). IQ2_XXS and IQ2_XS need an importance matrix, as in
llama.cpp (types.IMATRIX_REQUIRED_TYPES). reference (numpy spec), block_ops (per-super-block code, one
source for CPU and CUDA), cpu (numba CPU), cuda (numba-cuda).
"""
