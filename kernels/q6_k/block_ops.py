"""Per-super-block code of Q6_K for the numba CPU and CUDA kernels (one source, see shared/ops.py).

quantize_row_q6_K_ref / _impl: make_qx_quants(16, 32, x, L, 1, qw or x*x) per sub-block, int8
scales against the largest, re-quantization against the rounded scales, then the layout
{uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d} (210 bytes).
"""
from __future__ import annotations

from ..shared.ops import F, GROUP_MAX_EPS, jit_for, ops_for
from ..types import get_format

_jit = jit_for(__name__)
_ops = ops_for(__name__)         # shared/ops as njit, or as CUDA device code in the twin

clamp = _ops.clamp
nearest_int = _ops.nearest_int
fp16_bits = _ops.fp16_bits
fp16_value = _ops.fp16_value
put_half = _ops.put_half
make_qx_quants = _ops.make_qx_quants

_FMT = get_format("Q6_K")
QK_K = _FMT.block_size            # 256 weights per super-block
TYPE_SIZE = _FMT.type_size        # 210 bytes


@_jit
def pack_q6_k(L, out, oo):
    for h in range(2):                     # two halves of 128 weights
        j = 128 * h
        for l in range(32):
            q1 = L[j + l]
            q2 = L[j + l + 32]
            q3 = L[j + l + 64]
            q4 = L[j + l + 96]
            out[oo + 64 * h + l] = (q1 & 0xF) | ((q3 & 0xF) << 4)
            out[oo + 64 * h + l + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4)
            out[oo + 128 + 32 * h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) \
                | ((q4 >> 4) << 6)


@_jit
def q6_k_block(x, xo, use_w, qw, qwo, out, oo, wbuf, L, scales):
    """Quantize the 256 weights at x[xo:] into out[oo:oo+210]; qw[qwo:] is the imatrix slice."""
    max_scale = F(0)
    max_abs = F(0)
    for ib in range(16):
        if use_w:
            s = make_qx_quants(16, 32, x, xo + 16 * ib, qw, qwo + 16 * ib, L, 16 * ib)
        else:
            for j in range(16):
                v = x[xo + 16 * ib + j]
                wbuf[j] = v * v
            s = make_qx_quants(16, 32, x, xo + 16 * ib, wbuf, 0, L, 16 * ib)
        scales[ib] = s
        if abs(s) > max_abs:
            max_abs = abs(s)
            max_scale = s
    if max_abs < GROUP_MAX_EPS:
        for k in range(TYPE_SIZE):
            out[oo + k] = 0
        return
    iscale = F(-128) / max_scale
    dh = fp16_bits(F(1) / iscale)
    put_half(out, oo + 208, dh)
    dv = fp16_value(dh)
    for ib in range(16):
        sc = min(127, nearest_int(iscale * scales[ib]))
        out[oo + 192 + ib] = sc & 0xFF
        d = dv * F(((sc & 0xFF) ^ 0x80) - 0x80)        # the stored int8_t
        if d != 0:
            for ii in range(16):
                k = 16 * ib + ii
                L[k] = clamp(nearest_int(x[xo + k] / d), -32, 31) + 32
    pack_q6_k(L, out, oo)
