"""The quantizer's per-tensor type choice for the newer architectures' tensors (latent attention,
shared experts, fused gate|up, dense layers between MoE ones...) is llama.cpp's: same types as
llama_model_quantize gives the same F32 GGUF, for the K-quant mixes."""
from __future__ import annotations

import pytest

from quantdesk.core.convert import open_source
from quantdesk.core.quantize import FILE_TYPES, quantize_model, tensor_types

from .conftest import gguf_tensors, llama_cpp_quantize
from .tiny_deepseek import build_deepseek
from .tiny_families_dense import FAMILIES, build_dense
from .tiny_glm4moe import build_glm4moe
from .tiny_llama4 import build_llama4

ARCHS = ["DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM", "Llama4ForConditionalGeneration",
         "Glm4MoeForCausalLM", *FAMILIES]
MIXES = ["Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_S", "Q6_K"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_types_match_llama_cpp(arch, tmp_path):
    if arch.startswith("Deepseek"):
        build_deepseek(tmp_path / "hf", arch)
    elif arch.startswith("Llama4"):
        build_llama4(tmp_path / "hf")
    elif arch.startswith("Glm4Moe"):
        build_glm4moe(tmp_path / "hf")
    else:
        build_dense(tmp_path / "hf", arch)
    f32 = quantize_model(tmp_path / "hf", tmp_path / "f32.gguf", "F32").path
    source = open_source(f32)
    for qtype in MIXES:
        ours = tensor_types([(t.name, t.shape, t.dtype) for t in source.tensors], qtype, source.params)
        ref = llama_cpp_quantize(f32, tmp_path / f"{qtype}.gguf", FILE_TYPES[qtype].ftype)
        theirs = {name: kind for name, (kind, _) in gguf_tensors(ref).items()}
        assert ours == theirs, qtype
