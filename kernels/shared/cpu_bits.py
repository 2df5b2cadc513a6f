"""float32 <-> int32 bit reinterpretation for numba CPU code (LLVM bitcasts: free, vectorizable).
ggml reads float bits in nearest_int and in its fp16 converter; so do we, the same way.
`nearest_int32` is ggml's nearest_int written as int32 IR, for loops that must stay SIMD."""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def f32_bits(typingctx, x):
    """The IEEE bits of a float32, as int32."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, i):
    """The float32 whose bits are the low 32 bits of an integer."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if i.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        elif i.bitwidth < 32:
            v = builder.zext(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(i), codegen


@intrinsic
def nearest_int32(typingctx, v):
    """nearest_int in pure int32 IR (numba would widen `&` and `-` to int64, halving the SIMD
    width of the level loops): fadd 1.5*2**23, bitcast, mask the mantissa, subtract 2**22."""
    if v != types.float32:
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        t = builder.fadd(args[0], ir.Constant(ir.FloatType(), 12582912.0))
        m = builder.and_(builder.bitcast(t, i32), ir.Constant(i32, 0x007FFFFF))
        return builder.sub(m, ir.Constant(i32, 0x00400000))
    return types.int32(types.float32), codegen
