"""The one catalogue of output file types: name, llama_ftype id (written as general.file_type),
the default tensor type (llama-quant.cpp's llama_ftype_get_default_type), a one-line note, and
whether llama.cpp refuses the type without an importance matrix. Ordered best quality first
within each family, as the Quantize page and `quantdesk quantize --help` list them."""
from __future__ import annotations

from dataclasses import dataclass

from quantdesk.kernels import get_format

_FLOATS = ("F32", "F16", "BF16")
_CALIBRATE = "needs an importance matrix (calibrate on your text)"

# Tensor types llama.cpp quantizes only with an importance matrix (llama-quant.cpp's
# tensor_requires_imatrix; token_embd/output are exempt). ggml_quantize_chunk itself asserts one
# only for IQ2_XXS, IQ2_XS and IQ1_S (ggml_quantize_requires_imatrix); IQ3_XXS runs without.
IMATRIX_TENSOR_TYPES = ("IQ3_XXS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_M", "IQ1_S")
# Per file type, the type a tensor of a multi-token-prediction layer gets instead of one of those
# when it has no importance data (mix.py's MTP rule): what llama.cpp gives token_embd in that file
# type, the one matrix it lets go without importance data.
WITHOUT_IMATRIX = {"IQ1_S": "Q2_K", "IQ1_M": "Q2_K", "IQ2_XXS": "Q2_K", "IQ2_XS": "Q2_K",
                   "IQ2_S": "IQ3_S", "IQ2_M": "IQ3_S", "IQ3_XXS": "IQ3_S", "IQ3_XS": "IQ3_S"}


@dataclass(frozen=True)
class FileType:
    name: str
    ftype: int          # llama_ftype, written as general.file_type
    default: str        # the GGML type most tensors get (llama-quant.cpp's default_type)
    note: str           # one-line quality note for the UI
    # llama.cpp refuses the file type without an imatrix on every model (its default type or its
    # attn_q/attn_k type is one of IMATRIX_TENSOR_TYPES); the writer checks each tensor exactly
    needs_imatrix: bool = False

    @property
    def is_float(self) -> bool:
        return self.default in _FLOATS

    @property
    def bits_per_weight(self) -> float:
        """Of the default type; a model's mix (see tensor_types) lands somewhat above it."""
        return get_format(self.default).bits_per_weight


FILE_TYPES: dict[str, FileType] = {f.name: f for f in (
    FileType("F32", 0, "F32", "lossless, largest"),
    FileType("F16", 1, "F16", "practically lossless"),
    FileType("BF16", 32, "BF16", "practically lossless, keeps the training range"),
    FileType("Q8_0", 7, "Q8_0", "near lossless"),
    FileType("Q6_K", 18, "Q6_K", "near lossless, smaller"),
    FileType("Q5_K_M", 17, "Q5_K", "very low loss, recommended when it fits"),
    FileType("Q5_K_S", 16, "Q5_K", "very low loss"),
    FileType("Q5_1", 9, "Q5_1", "legacy; prefer Q5_K_M"),
    FileType("Q5_0", 8, "Q5_0", "legacy; prefer Q5_K_S"),
    FileType("Q4_K_M", 15, "Q4_K", "balanced: the usual choice"),
    FileType("Q4_K_S", 14, "Q4_K", "small, some quality loss"),
    FileType("Q4_1", 3, "Q4_1", "legacy; prefer Q4_K_M"),
    FileType("Q4_0", 2, "Q4_0", "legacy; prefer Q4_K_S"),
    FileType("IQ4_NL", 25, "IQ4_NL", "4-bit non-linear codebook, 32-weight blocks"),
    FileType("IQ4_XS", 30, "IQ4_XS", "4-bit non-linear codebook: about Q4_K_S, smaller"),
    FileType("MXFP4_MOE", 38, "MXFP4", "MoE experts in MXFP4, the rest Q8_0"),
    FileType("Q3_K_L", 13, "Q3_K", "small, noticeable loss"),
    FileType("Q3_K_M", 12, "Q3_K", "very small, noticeable loss"),
    FileType("IQ3_M", 27, "IQ3_S", "3-bit grid mix with Q4_K: about Q3_K_M, smaller"),
    FileType("IQ3_S", 26, "IQ3_S", "3-bit grid: better than Q3_K_S at its size"),
    FileType("Q3_K_S", 11, "Q3_K", "very small, high loss"),
    FileType("IQ3_XS", 22, "IQ3_S", "3-bit grid, smaller; " + _CALIBRATE, True),
    FileType("IQ3_XXS", 23, "IQ3_XXS", "3-bit grid, smallest 3-bit; " + _CALIBRATE, True),
    FileType("Q2_K", 10, "Q2_K", "smallest, large loss"),
    FileType("IQ2_M", 29, "IQ2_S", "2-bit grid mix, large loss; " + _CALIBRATE, True),
    FileType("IQ2_S", 28, "IQ2_XS", "2-bit grid, large loss; " + _CALIBRATE, True),
    FileType("IQ2_XS", 20, "IQ2_XS", "2-bit grid, very large loss; " + _CALIBRATE, True),
    FileType("IQ2_XXS", 19, "IQ2_XXS", "2-bit grid, very large loss; " + _CALIBRATE, True),
    FileType("IQ1_M", 31, "IQ1_M", "1.75 bits: for very large models only; " + _CALIBRATE, True),
    FileType("IQ1_S", 24, "IQ1_S", "1.56 bits: for very large models only; " + _CALIBRATE, True),
    FileType("TQ2_0", 37, "TQ2_0", "ternary: only for models trained ternary (BitNet, TriLM)"),
    FileType("TQ1_0", 36, "TQ1_0", "ternary, smallest: only for models trained ternary"),
)}


def file_type(name: str) -> FileType:
    try:
        return FILE_TYPES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown output type {name!r}; choose one of "
                         f"{', '.join(FILE_TYPES)}") from None


def imatrix_refusal(ftype: str, types: dict[str, str], imatrix_names=None) -> str | None:
    """llama.cpp's refusal of a plan whose tensors need an importance matrix it lacks (none given:
    `imatrix_names` None; or one without an entry for such a tensor), as one line offering the
    calibration; None when every tensor of the plan can be written. (Tensors of an MTP layer never
    trip it: the mix gives those without importance data a WITHOUT_IMATRIX type, since
    calibrating cannot always reach them.)"""
    need = [(n, t) for n, t in types.items() if t in IMATRIX_TENSOR_TYPES
            and n not in ("token_embd.weight", "per_layer_token_embd.weight", "output.weight")
            and (imatrix_names is None or n not in imatrix_names)]
    if not need:
        return None
    name, qtype = need[0]
    what = ("needs an importance matrix" if imatrix_names is None else
            "needs an importance matrix with an entry for every tensor; the one given lacks")
    return (f"{ftype.upper()} {what} {name} (as {qtype}, which llama.cpp refuses to write "
            "without one): calibrate on your text (\"Calibrate on my text…\" on the Quantize "
            "page, or `quantdesk imatrix SRC --text FILE -o OUT.gguf` then --imatrix OUT.gguf), "
            "or choose IQ3_S, IQ3_M or a K-quant")
