"""A tiny llama stored as FP8 / GPTQ / AWQ converts to a GGUF llama.cpp loads, and its logits are
those of a numpy forward over the dequantized weights (computed by the tests' own references)."""
from __future__ import annotations

import numpy as np
import pytest

from quantdesk.core.quantize import quantize_model

from .quantized_ckpt import quantize_checkpoint
from .test_convert_hf import _llama_logits
from .tiny_llama import build_tiny_llama, numpy_forward

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["fp8", "gptq", "awq"])
def test_quantized_checkpoint_logits_match_numpy_forward(tmp_path, method):
    folder = tmp_path / "hf"
    weights = build_tiny_llama(folder, n_layer=2, n_embd=256, n_ff=512, dtype="F32", seed=4)
    values = quantize_checkpoint(folder, weights, method, n_layer=2)
    out = quantize_model(folder, tmp_path / f"tiny-{method}.gguf", "F32").path
    tokens, got = _llama_logits(out)
    want = numpy_forward(values, tokens, n_layer=2, n_head=4, n_head_kv=2)
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel < 1e-4, rel
    # the dequantized weights differ from the originals: the reference really used them
    assert not np.allclose(values["model.layers.0.mlp.up_proj.weight"],
                           weights["model.layers.0.mlp.up_proj.weight"])


def test_gptq_checkpoint_quantizes_to_q4_k_m(tmp_path):
    import llama_cpp
    folder = tmp_path / "hf"
    weights = build_tiny_llama(folder, n_layer=2, n_embd=256, n_ff=512, dtype="F32", seed=5)
    quantize_checkpoint(folder, weights, "gptq", n_layer=2)
    out = quantize_model(folder, tmp_path / "tiny-q4km.gguf", "Q4_K_M").path
    llm = llama_cpp.Llama(str(out), n_ctx=32, verbose=False, n_threads=2)
    assert len(llm.tokenize(b"The capital of France", add_bos=False)) > 1
    llm.close()


def test_gptq_mixture_of_experts(tmp_path):
    """Qwen3-MoE with every expert's projections stored as GPTQ: the dequantized experts are
    stacked into the 3-D GGUF tensors like bf16 ones."""
    from .tiny_families import build_family, family_forward
    weights, spec = build_family(tmp_path / "hf", "Qwen3MoeForCausalLM", n_layer=2)
    values = quantize_checkpoint(tmp_path / "hf", weights, "gptq", n_layer=2, other_dtype="BF16")
    assert any(".experts.0.gate_proj.weight" in k and not np.array_equal(values[k], weights[k])
               for k in values)
    out = quantize_model(tmp_path / "hf", tmp_path / "moe.gguf", "F32").path
    tokens, got = _llama_logits(out)
    want = family_forward(values, tokens, spec)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
