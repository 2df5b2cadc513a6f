"""llama.cpp's per-tensor rules for the file types the tiny test models cannot show against
llama_model_quantize (test_mix_identity.py checks whole files): MXFP4_MOE on stacked expert
tensors, and the IQ4 rule for grouped-query attention."""
from __future__ import annotations

from quantdesk.core.convert.source import ModelParams
from quantdesk.core.quantize import tensor_types

MOE = ModelParams(arch="qwen3moe", n_layer=2, n_head=8, n_head_kv=2, n_expert=4)
TENSORS = [("token_embd.weight", (1000, 256), "F32"), ("output.weight", (1000, 256), "F32"),
           *[(f"blk.{i}.{n}", shape, "F32") for i in range(2) for n, shape in (
               ("attn_q.weight", (256, 256)), ("attn_k.weight", (64, 256)),
               ("attn_v.weight", (64, 256)), ("attn_output.weight", (256, 256)),
               ("ffn_gate_inp.weight", (4, 256)), ("attn_norm.weight", (256,)),
               ("ffn_up_exps.weight", (4, 512, 256)), ("ffn_gate_exps.weight", (4, 512, 256)),
               ("ffn_down_exps.weight", (4, 256, 512)))]]


def test_mxfp4_moe_puts_experts_in_mxfp4_and_the_rest_in_q8_0():
    types = tensor_types(TENSORS, "MXFP4_MOE", MOE)
    assert {n: t for n, t in types.items() if "_exps" in n} == \
        {n: "MXFP4" for n, _, _ in TENSORS if "_exps" in n}
    assert types["output.weight"] == types["token_embd.weight"] == "Q8_0"
    assert types["blk.0.attn_q.weight"] == types["blk.1.attn_v.weight"] == "Q8_0"
    assert types["blk.0.ffn_gate_inp.weight"] == types["blk.0.attn_norm.weight"] == "F32"


def test_iq4_gives_attn_v_q5_k_under_grouped_query_attention_and_ternary_embeddings_q4_k():
    iq4 = tensor_types(TENSORS, "IQ4_XS", MOE)                  # n_head / n_head_kv = 4
    assert iq4["blk.0.attn_v.weight"] == "Q5_K" and iq4["blk.0.attn_q.weight"] == "IQ4_XS"
    tq = tensor_types(TENSORS, "TQ1_0", MOE)
    assert tq["token_embd.weight"] == "Q4_K" and tq["output.weight"] == "Q6_K"
    assert tq["blk.0.attn_q.weight"] == "TQ1_0"
