"""The one catalogue of GGML tensor types: layouts from gguf-py, which kernels of ours write them.

Every type in gguf's `GGMLQuantizationType` is here, with its ggml id and its block layout taken
from `gguf.constants.GGML_QUANT_SIZES` (never typed in again). What is ours is declared once, in
`KERNEL_FAMILIES`: each kernel family is a sub-package of quantdesk.kernels (spec, CPU, CUDA)
that registers every type it lists for every backend in `BACKENDS`. F32/F16/BF16 need no kernel:
`kernels.quantize` converts to them directly.

    get_format("Q4_K") -> TensorType(name="Q4_K", ggml_type=12, block_size=256, type_size=144, ...)
    row_bytes("Q4_K", 4096) -> 2304
"""
from __future__ import annotations

from dataclasses import dataclass

from gguf.constants import GGML_QUANT_SIZES, QK_K, GGMLQuantizationType  # noqa: F401 (QK_K)

BACKENDS = ("reference", "cpu", "cuda")

# kernel family (sub-package of quantdesk.kernels) -> the types it implements, for every backend
KERNEL_FAMILIES: dict[str, tuple[str, ...]] = {
    "legacy": ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"),     # 32-weight blocks
    "k_scale_min": ("Q2_K", "Q4_K", "Q5_K"),                 # 256-weight super-blocks, scale+min
    "q3_k": ("Q3_K",),                                       # 256, 3-bit, scale only
    "q6_k": ("Q6_K",),                                       # 256, 6-bit, scale only
    "iq4": ("IQ4_NL", "IQ4_XS"),                             # 32 / 256, non-linear codebook
    "iq3": ("IQ3_XXS", "IQ3_S"),                             # 256, 3-bit grids of 4 values
    "ternary": ("TQ1_0", "TQ2_0"),                           # 256, trits, absmax scale
    "mxfp4": ("MXFP4",),                                     # 32, e2m1 values, e8m0 scale
    "iq1": ("IQ1_S", "IQ1_M"),                               # 256, ternary groups on a grid
    "iq2": ("IQ2_XXS", "IQ2_XS", "IQ2_S"),                   # 256, E8-lattice grids, 4-bit scales
}

# Written by kernels.quantize without a kernel (a float conversion).
FLOAT_TYPES = ("F32", "F16", "BF16")

# ggml_quantize_requires_imatrix: ggml_quantize_chunk asserts (aborts the process) without an
# importance matrix for these; kernels.quantize refuses them in one line instead.
IMATRIX_REQUIRED_TYPES = ("IQ2_XXS", "IQ2_XS", "IQ1_S")


@dataclass(frozen=True)
class TensorType:
    """One GGML tensor type: its layout, and the kernel family of ours that writes it (if any)."""
    name: str
    ggml_type: int          # ggml's enum ggml_type value
    block_size: int         # weights per block
    type_size: int          # bytes per block
    family: str | None      # our kernel family (sub-package), None when we have no kernel

    @property
    def bits_per_weight(self) -> float:
        return self.type_size * 8 / self.block_size

    @property
    def backends(self) -> tuple[str, ...]:
        """Our backends that quantize to this type (every one of them, or none)."""
        return BACKENDS if self.family else ()

    @property
    def needs_imatrix(self) -> bool:
        """ggml refuses to quantize to this type without an importance matrix."""
        return self.name in IMATRIX_REQUIRED_TYPES

    @property
    def is_float(self) -> bool:
        return self.name in FLOAT_TYPES

    @property
    def writable(self) -> bool:
        """kernels.quantize can produce this type."""
        return self.is_float or self.family is not None


QuantFormat = TensorType    # the earlier name, still used by callers

_FAMILY_OF = {name: family for family, names in KERNEL_FAMILIES.items() for name in names}

TYPES: dict[str, TensorType] = {
    t.name: TensorType(t.name, int(t), *GGML_QUANT_SIZES[t], _FAMILY_OF.get(t.name))
    for t in GGMLQuantizationType if t in GGML_QUANT_SIZES
}
FORMATS = TYPES             # the earlier name

# Our quantized types in the order tests and benchmarks list them: the legacy types, then the
# K-quants by name (Q2_K .. Q6_K).
QUANT_TYPES: tuple[str, ...] = KERNEL_FAMILIES["legacy"] + tuple(sorted(
    n for family, names in KERNEL_FAMILIES.items() if family != "legacy" for n in names))

assert set(_FAMILY_OF) <= set(TYPES), "a kernel family names a type gguf does not know"


def get_format(qtype: str) -> TensorType:
    try:
        return TYPES[qtype.upper()]
    except KeyError:
        known = ", ".join(TYPES)
        raise ValueError(f"unknown quantization type {qtype!r}; known: {known}") from None


def family_types(family: str) -> tuple[TensorType, ...]:
    """The descriptors of the types one kernel family implements (what its modules register)."""
    return tuple(TYPES[n] for n in KERNEL_FAMILIES[family])


def row_bytes(qtype: str, n_per_row: int) -> int:
    """Bytes of one row of n_per_row weights; n_per_row must be a multiple of the block size."""
    fmt = get_format(qtype)
    if n_per_row % fmt.block_size:
        raise ValueError(f"{fmt.name} needs rows that are a multiple of {fmt.block_size} "
                         f"weights; got {n_per_row}")
    return n_per_row // fmt.block_size * fmt.type_size
