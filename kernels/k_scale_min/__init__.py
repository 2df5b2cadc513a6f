"""Q2_K, Q4_K, Q5_K: K-quants with a scale and a min per sub-block (256-weight super-blocks).

reference (numpy spec), superblock_ops (make_qp_quants and the super-block finishing, one source
for CPU and CUDA), cpu (sub-block searches side by side, shared/qkx_lanes), cuda + cuda_search
(one thread per sub-block for the search, one per super-block to finish).
"""
