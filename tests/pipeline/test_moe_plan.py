"""The planner's picture of a mixture-of-experts model before it is converted (from config.json) is
the file the converter then writes: the same 3-D expert tensors, shared-expert tensors, dense
leading layers and latent-attention tensors, so the same bytes per layer and the same KV shape."""
from __future__ import annotations

import json

import pytest

from quantdesk.core.planner import estimate_memory, load_profile, profile_from_hf_config
from quantdesk.core.quantize import quantize_model

from .tiny_deepseek import build_deepseek
from .tiny_families import build_family
from .tiny_glm4moe import build_glm4moe
from .tiny_llama4 import build_llama4


def _matrices(profile, layer: int) -> dict[str, tuple[int, ...]]:
    p = f"blk.{layer}."
    return {n: s for n, s, _ in profile.tensors if n.startswith(p) and len([d for d in s if d > 1]) >= 2}


@pytest.mark.parametrize("arch", ["DeepseekV3ForCausalLM", "Qwen2MoeForCausalLM", "Llama4ForConditionalGeneration",
                                  "Glm4MoeForCausalLM"])
def test_config_profile_is_the_converted_file(arch, tmp_path):
    folder = tmp_path / "hf"
    if arch.startswith("Deepseek"):
        build_deepseek(folder, arch)
    elif arch.startswith("Llama4"):
        build_llama4(folder)
    elif arch.startswith("Glm4Moe"):
        build_glm4moe(folder)
    else:
        build_family(folder, arch, n_layer=2)
    gguf = quantize_model(folder, tmp_path / "m.gguf", "F32").path
    written = load_profile(gguf)
    planned = profile_from_hf_config(json.loads((folder / "config.json").read_text()), source_type="F32")
    assert planned.architecture == written.architecture and planned.n_expert == written.n_expert > 0
    for i in range(written.n_layer):
        assert _matrices(planned, i) == _matrices(written, i), i
    names = {n for n, _, _ in written.tensors}
    assert "blk.1.ffn_gate_shexp.weight" in names and "blk.1.ffn_down_exps.weight" in names
    # bytes per layer: equal but for the 1-D norms/biases the config layout leaves out (< 1%)
    got, want = planned.group_bytes()[0], written.group_bytes()[0]
    assert all(abs(g - w) <= 0.01 * w for g, w in zip(got, want)), (got, want)
    assert (planned.n_head_kv, planned.head_dim_k, planned.head_dim_v) == \
        (written.n_head_kv, written.head_dim_k, written.head_dim_v)
    kv = estimate_memory(written, n_ctx=512).kv_ram
    assert estimate_memory(planned, n_ctx=512).kv_ram == kv
    if arch.startswith("Deepseek"):   # K only: the latent (64) + rope key (16) per cell, F16
        assert kv == written.n_layer * 512 * (64 + 16) * 2
