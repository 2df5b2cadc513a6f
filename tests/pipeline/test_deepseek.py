"""DeepSeek-V3 and V2-Lite: a tiny checkpoint converts to llama.cpp's deepseek2 (MLA with kv_b cut
per head, dense first layer, routed + shared experts, V3's biased sigmoid routing in expert groups),
llama.cpp loads it, its logits are the HF computation's, and the keys are its converter's."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.quantize import quantize_model

from .test_convert_hf import _llama_logits
from .tiny_deepseek import H, KV_R, N_EXP, NOPE, V, build_deepseek, deepseek_forward

# `deepseek2.*` keys of the pinned converter (TextModel + DeepseekV2Model.set_gguf_parameters).
_KEYS = {"block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
         "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "expert_count",
         "expert_used_count", "expert_group_count", "expert_group_used_count", "expert_gating_func",
         "leading_dense_block_count", "vocab_size", "attention.q_lora_rank", "attention.kv_lora_rank",
         "attention.key_length", "attention.value_length", "attention.key_length_mla",
         "attention.value_length_mla", "expert_feed_forward_length", "expert_shared_count",
         "expert_weights_scale", "rope.dimension_count"}
# V2-Lite: the converter leaves q_lora_rank out, and llama.cpp then refuses any Lite-shaped model
# whose layer count is not Lite's own 26/27; we write 0 (one q_proj), which every count loads.
KEYS = {"DeepseekV3ForCausalLM": _KEYS | {"expert_weights_norm"}, "DeepseekV2ForCausalLM": _KEYS}


@pytest.mark.parametrize("arch", ["DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM"])
def test_deepseek_converts_and_matches_numpy(arch, tmp_path):
    weights, spec = build_deepseek(tmp_path / "hf", arch)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    reader = GGUFReader(out)
    assert reader.get_field("general.architecture").contents() == "deepseek2"
    keys = {k[len("deepseek2."):] for k in reader.fields if k.startswith("deepseek2.")}
    assert keys == KEYS[arch]
    field = lambda k: reader.get_field("deepseek2." + k).contents()   # noqa: E731
    assert field("attention.head_count_kv") == 1 and field("leading_dense_block_count") == 1
    assert field("attention.key_length_mla") == NOPE + 16 and field("attention.value_length_mla") == V
    assert field("expert_gating_func") == (2 if arch == "DeepseekV3ForCausalLM" else 1)   # sigmoid / softmax
    shapes = {t.name: list(t.shape) for t in reader.tensors}   # ggml order
    assert shapes["blk.1.attn_k_b.weight"] == [NOPE, KV_R, H]
    assert shapes["blk.1.attn_v_b.weight"] == [KV_R, V, H]
    assert shapes["blk.1.ffn_gate_exps.weight"][2] == N_EXP and "blk.0.ffn_gate.weight" in shapes
    assert ("blk.1.exp_probs_b.bias" in shapes) == (arch == "DeepseekV3ForCausalLM")
    assert not any(n.startswith("blk.3.") for n in shapes)   # the MTP layer is left out
    tokens, got = _llama_logits(out)
    want = deepseek_forward(weights, tokens, spec)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_deepseek_v3_real_config_keys():
    """DeepSeek-V3's own config.json (YaRN 40x, 8 groups): the yarn keys the converter writes,
    with its 0.1 x mscale_all_dim log-multiplier that llama.cpp divides out again."""
    import gguf

    from quantdesk.core.convert.registry import adapter_for
    cfg = {"architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168, "intermediate_size": 18432,
           "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128,
           "num_key_value_heads": 128, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_nope_head_dim": 128,
           "qk_rope_head_dim": 64, "v_head_dim": 128, "n_routed_experts": 256, "n_shared_experts": 1,
           "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4, "first_k_dense_replace": 3,
           "norm_topk_prob": True, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid",
           "topk_method": "noaux_tc", "max_position_embeddings": 163840, "rms_norm_eps": 1e-6,
           "rope_theta": 10000, "vocab_size": 129280, "num_nextn_predict_layers": 1,
           "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                            "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "type": "yarn"}}
    gw = gguf.GGUFWriter(path=None, arch="deepseek2")
    adapter_for(cfg).add_hparams(gw)
    kv = {k: v.value for k, v in gw.kv_data[0].items()}
    assert set(k[len("deepseek2."):] for k in kv if k.startswith("deepseek2.")) == KEYS["DeepseekV3ForCausalLM"] | {
        "rope.scaling.type", "rope.scaling.factor", "rope.scaling.original_context_length",
        "rope.scaling.yarn_beta_fast", "rope.scaling.yarn_beta_slow", "rope.scaling.yarn_log_multiplier"}
    assert kv["deepseek2.rope.scaling.yarn_log_multiplier"] == pytest.approx(0.1)
    assert kv["deepseek2.expert_group_count"] == 8 and kv["deepseek2.leading_dense_block_count"] == 3
    assert kv["deepseek2.attention.key_length"] == 576 and kv["deepseek2.attention.value_length"] == 512
