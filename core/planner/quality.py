"""What each quant type costs in quality, in published llama.cpp figures, labelled as such.

KLD_LLAMA3_8B: mean KL divergence of the quantized Llama-3-8B's token distribution from the F16
model's, as published by llama.cpp (perplexity tool, --kl-divergence). We quote only the figures we
have; other types get a qualitative note, never an invented number.
"""
from __future__ import annotations

KLD_SOURCE = "llama.cpp published figure: Llama-3-8B, mean KLD vs F16"
KLD_LLAMA3_8B = {"Q8_0": 0.0014, "Q6_K": 0.0055, "Q5_K_M": 0.0108, "Q4_K_M": 0.031,
                 "Q3_K_M": 0.102, "Q2_K": 0.445}

# Best first. F16/BF16/F32 lead because they are the source, but the recommendation prefers Q8_0
# (same answers in practice at half the memory).
QUALITY_ORDER = ("F32", "BF16", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0",
                 "Q4_K_M", "Q4_K_S", "IQ4_XS", "IQ4_NL", "Q4_1", "Q4_0", "MXFP4_MOE", "Q3_K_L",
                 "Q3_K_M", "IQ3_M", "IQ3_S", "Q3_K_S", "IQ3_XS", "IQ3_XXS", "Q2_K", "IQ2_M",
                 "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S", "TQ2_0", "TQ1_0")
UNQUANTIZED = ("F32", "BF16", "F16")

_NOTES = {
    "F32": "unquantized source precision", "BF16": "unquantized source precision",
    "F16": "unquantized source precision", "Q5_K_S": "between Q5_K_M and Q4_K_M",
    "Q5_1": "legacy type, about Q5_K_S quality", "Q5_0": "legacy type, about Q5_K_S quality",
    "Q4_K_S": "between Q4_K_M and Q3_K_M", "Q4_1": "legacy type, below Q4_K_M",
    "Q4_0": "legacy type, below Q4_K_M", "Q3_K_L": "between Q4_K_M and Q3_K_M",
    "Q3_K_S": "below Q3_K_M",
    "IQ4_XS": "about Q4_K_S, smaller", "IQ4_NL": "about Q4_K_S",
    "MXFP4_MOE": "MoE experts 4-bit float, the rest Q8_0",
    "IQ3_M": "about Q3_K_M, smaller", "IQ3_S": "between Q3_K_M and Q3_K_S",
    "IQ3_XS": "about Q3_K_S, smaller (needs an importance matrix)",
    "IQ3_XXS": "below Q3_K_S (needs an importance matrix)",
    "IQ2_M": "between Q2_K and Q3_K_S (needs an importance matrix)",
    "IQ2_S": "about Q2_K, smaller (needs an importance matrix)",
    "IQ2_XS": "below Q2_K (needs an importance matrix)",
    "IQ2_XXS": "well below Q2_K (needs an importance matrix)",
    "IQ1_M": "very large loss; for very large models (needs an importance matrix)",
    "IQ1_S": "very large loss; for very large models (needs an importance matrix)",
    "TQ2_0": "ternary: lossless only for models trained ternary (BitNet, TriLM)",
    "TQ1_0": "ternary: lossless only for models trained ternary (BitNet, TriLM)",
}


def quality_rank(qtype: str) -> int:
    """0 = best. Unknown types (IQ*, MXFP4, ...) sort after the ones we know."""
    try:
        return QUALITY_ORDER.index(qtype.upper())
    except ValueError:
        return len(QUALITY_ORDER)


def quality_note(qtype: str) -> dict:
    """{"kld": float | None, "note": str, "source": str | None} for one type."""
    q = qtype.upper()
    if q in KLD_LLAMA3_8B:
        kld = KLD_LLAMA3_8B[q]
        return {"kld": kld, "note": f"KLD {kld:g} vs F16 ({KLD_SOURCE.split(': ')[1]})",
                "source": KLD_SOURCE}
    return {"kld": None, "note": _NOTES.get(q, "no published figure"), "source": None}
