"""GLM-4.5 (glm4moe): a tiny checkpoint with its multi-token-prediction (MTP) layer converts as
llama.cpp's converter writes it (MTP kept, its default: block_count counts the layer, keys and
tensors below), llama.cpp loads it (MTP tensors included), normal decoding gives the HF logits
(the MTP layer takes no part), llama.cpp's MTP draft graph gives the HF MTP module's logits, and
llama_model_quantize makes the same file as our quantizer."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.convert.errors import ConvertError
from quantdesk.core.quantize import FILE_TYPES, quantize_model

from .conftest import llama_cpp_quantize
from .test_convert_hf import _llama_logits
from .tiny_glm4moe import build_glm4moe, glm4moe_forward, glm4moe_mtp_forward
from .tiny_llama import write_safetensors

KEYS = {"block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
        "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "expert_count",
        "expert_used_count", "expert_group_count", "expert_group_used_count", "attention.key_length", "attention.value_length",
        "rope.dimension_count", "expert_feed_forward_length", "expert_shared_count",
        "leading_dense_block_count", "expert_gating_func", "expert_weights_scale", "expert_weights_norm",
        "nextn_predict_layers"}

# What the pinned converter (conversion/glm.py Glm4MoeModel; base.py's type rules) writes for the
# tiny checkpoint with --outtype f16: name -> (type, numpy shape). E 128, q 4x32, k/v 2x32, vocab
# 320, layer 0 dense (ffn 256), 1-2 MoE (8 experts of 64, one shared), 3 the MTP layer: the MoE
# layer under tensor_mapping's NEXTN names (model.layers.3.eh_proj -> blk.3.nextn.eh_proj, ...).
# 1-D tensors, biases and the router stay F32.
ATTENTION = {"attn_norm.weight": ("F32", (128,)), "post_attention_norm.weight": ("F32", (128,)),
             "attn_q.weight": ("F16", (128, 128)), "attn_q.bias": ("F32", (128,)),
             "attn_k.weight": ("F16", (64, 128)), "attn_k.bias": ("F32", (64,)),
             "attn_v.weight": ("F16", (64, 128)), "attn_v.bias": ("F32", (64,)),
             "attn_q_norm.weight": ("F32", (32,)), "attn_k_norm.weight": ("F32", (32,)),
             "attn_output.weight": ("F16", (128, 128))}
DENSE = {"ffn_gate.weight": ("F16", (256, 128)), "ffn_up.weight": ("F16", (256, 128)),
         "ffn_down.weight": ("F16", (128, 256))}
MOE = {"ffn_gate_inp.weight": ("F32", (8, 128)), "exp_probs_b.bias": ("F32", (8,)),
       "ffn_gate_exps.weight": ("F16", (8, 64, 128)), "ffn_up_exps.weight": ("F16", (8, 64, 128)),
       "ffn_down_exps.weight": ("F16", (8, 128, 64)), "ffn_gate_shexp.weight": ("F16", (64, 128)),
       "ffn_up_shexp.weight": ("F16", (64, 128)), "ffn_down_shexp.weight": ("F16", (128, 64))}
NEXTN = {"nextn.eh_proj.weight": ("F16", (128, 256)), "nextn.enorm.weight": ("F32", (128,)),
         "nextn.hnorm.weight": ("F32", (128,)), "nextn.shared_head_norm.weight": ("F32", (128,)),
         "nextn.embed_tokens.weight": ("F16", (320, 128)),          # GLM-4.5 only
         "nextn.shared_head_head.weight": ("F16", (320, 128))}      # GLM-4.5 only
COPIES = ("nextn.embed_tokens.weight", "nextn.shared_head_head.weight")


def expected(*, mtp: bool = True, copies: bool = True) -> dict:
    out = {"token_embd.weight": ("F16", (320, 128)), "output_norm.weight": ("F32", (128,)),
           "output.weight": ("F16", (320, 128))}
    layers = [DENSE, MOE, MOE] + ([{**MOE, **NEXTN}] if mtp else [])
    for i, ffn in enumerate(layers):
        out.update({f"blk.{i}.{k}": v for k, v in {**ATTENTION, **ffn}.items()
                    if copies or k not in COPIES})
    return out


def _tensors(path) -> dict:
    return {t.name: (t.tensor_type.name, tuple(int(d) for d in reversed(t.shape.tolist())))
            for t in GGUFReader(path).tensors}


def _keys(path) -> dict:
    reader = GGUFReader(path)
    return {k[len("glm4moe."):]: reader.get_field(k).contents() for k in reader.fields
            if k.startswith("glm4moe.")}


def _load_with_mtp(path) -> tuple[int, int]:
    """llama.cpp loads every tensor, the MTP layer's too (load_mtp; plain loading skips them):
    (trunk layers, MTP layers) as it counts them."""
    import llama_cpp
    params = llama_cpp.llama_model_default_params()
    params.load_mtp = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    assert model, f"llama.cpp refused {path}"
    try:
        return llama_cpp.llama_model_n_layer(model), llama_cpp.llama_model_n_layer_nextn(model)
    finally:
        llama_cpp.llama_model_free(model)


def _mtp_logits(path, tokens: list[int], hidden: np.ndarray) -> np.ndarray:
    """llama.cpp's MTP draft graph (an LLAMA_CONTEXT_TYPE_MTP context over the model loaded with
    its MTP layer): each token paired with a trunk hidden state, as common/speculative.cpp feeds
    it; logits at every position. F32 KV and no flash attention (its F16 rounding is ~3e-4)."""
    import ctypes

    import llama_cpp as lc
    mparams = lc.llama_model_default_params()
    mparams.load_mtp = True
    model = lc.llama_model_load_from_file(str(path).encode(), mparams)
    cparams = lc.llama_context_default_params()
    cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = 64
    cparams.ctx_type = lc.LLAMA_CONTEXT_TYPE_MTP
    cparams.type_k = cparams.type_v = cparams.flash_attn_type = 0   # F32, F32, disabled
    cparams.n_threads = cparams.n_threads_batch = 2
    ctx = lc.llama_init_from_model(model, cparams)
    batch = lc.llama_batch_ext_init(ctx)
    rows = np.ascontiguousarray(hidden, dtype=np.float32)
    try:
        for i, token in enumerate(tokens):
            idx = lc.llama_batch_ext_add_token(batch, 0, token)
            lc.llama_batch_ext_set_pos(batch, idx, (ctypes.c_int32 * 1)(i))
            state = lc.llama_embd(rows[i].ctypes.data_as(ctypes.POINTER(ctypes.c_float)), 1, rows.shape[1])
            assert lc.llama_batch_ext_set_embd_token(batch, idx, state)
            lc.llama_batch_ext_set_output_logits(batch, idx, True)
        assert lc.llama_process(ctx, lc.LLAMA_PROCESS_TYPE_DECODE, batch) == 0
        n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(model))
        return np.array([np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
                         for i in range(len(tokens))], dtype=np.float64)
    finally:
        lc.llama_batch_ext_free(batch)
        lc.llama_free(ctx)
        lc.llama_model_free(model)


@pytest.mark.parametrize("copies", [True, False], ids=["glm45", "glm46"])
def test_mtp_layer_drafts_like_the_hf_mtp_module(tmp_path, copies):
    """The converted MTP layer computes, in llama.cpp's MTP graph, what the HF module computes
    (with GLM-4.6's form the graph falls back to token_embd and output, as the module does)."""
    weights = build_glm4moe(tmp_path / "hf", mtp_copies=copies)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    tokens = [5, 17, 42, 99, 3, 250]
    hidden = np.random.default_rng(1).standard_normal((len(tokens), 128))
    got = _mtp_logits(out, tokens, hidden)
    want = glm4moe_mtp_forward(weights, tokens, hidden)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_glm4moe_converts_and_matches_numpy(tmp_path):
    weights = build_glm4moe(tmp_path / "hf")
    assert "model.layers.3.shared_head.head.weight" in weights   # the checkpoint holds its MTP layer
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    reader = GGUFReader(out)
    assert reader.get_field("general.architecture").contents() == "glm4moe"
    keys = _keys(out)
    assert set(keys) == KEYS
    assert (keys["block_count"], keys["nextn_predict_layers"], keys["rope.dimension_count"]) == (4, 1, 16)
    tokens, got = _llama_logits(out)
    want = glm4moe_forward(weights, tokens)   # the 3 trunk layers only
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_mtp_layer_is_written_as_llama_cpp_converter_writes_it(tmp_path):
    build_glm4moe(tmp_path / "hf")
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F16").path
    assert _tensors(out) == expected()
    assert _load_with_mtp(out) == (3, 1)


def test_glm46_form_without_embedding_and_head_copies(tmp_path):
    """GLM-4.6 stores no embed_tokens / shared_head.head in its MTP layer; llama.cpp's MTP graph
    then uses token_embd and output."""
    build_glm4moe(tmp_path / "hf", mtp_copies=False)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F16").path
    assert _tensors(out) == expected(copies=False)
    assert _load_with_mtp(out) == (3, 1)


def test_checkpoint_without_its_mtp_weights(tmp_path):
    """config.json announces the MTP layer, the weights were stripped: the converter still counts
    it (block_count 4, nextn_predict_layers 1) and llama.cpp takes the file as trunk-only."""
    weights = build_glm4moe(tmp_path / "hf", mtp=False)
    out = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    assert {n for n in _tensors(out)} == set(expected(mtp=False))
    keys = _keys(out)
    assert (keys["block_count"], keys["nextn_predict_layers"]) == (4, 1)
    assert _load_with_mtp(out) == (3, 1)
    tokens, got = _llama_logits(out)
    want = glm4moe_forward(weights, tokens)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_half_an_mtp_layer_is_refused_in_one_line(tmp_path):
    weights = build_glm4moe(tmp_path / "hf")
    del weights["model.layers.3.hnorm.weight"]
    write_safetensors(tmp_path / "hf" / "model.safetensors", weights, "BF16")
    with pytest.raises(ConvertError, match=r"no blk\.3\.nextn\.hnorm\.weight, which llama.cpp's glm4moe"):
        quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F16")
    assert not (tmp_path / "m.gguf").exists()


@pytest.mark.parametrize("qtype", ["Q4_K_M"])
def test_quantized_file_is_llama_cpp_byte_for_byte(tmp_path, qtype):
    """The type mix counts the MTP layer as llama.cpp's does (n_layer_all = block_count sets which
    layers' ffn_down get more bits: with 7 trunk layers + 1, layers 3, 6, 7 and not 2, 5, 6 as a
    count of 7 would give) and quantizes its nextn matrices like any other weight."""
    build_glm4moe(tmp_path / "hf", n_layer=7)
    f32 = quantize_model(tmp_path / "hf", tmp_path / "f32.gguf", "F32").path
    ours = quantize_model(f32, tmp_path / "ours.gguf", qtype, backend="cpu", threads=2).path
    ref = llama_cpp_quantize(f32, tmp_path / "ref.gguf", FILE_TYPES[qtype].ftype)
    types = {n: t for n, (t, _) in _tensors(ours).items()}
    assert types["blk.7.nextn.eh_proj.weight"] == "Q4_K"
    assert [i for i in range(1, 8) if types[f"blk.{i}.ffn_down_exps.weight"] == "Q8_0"] == [3, 6, 7]
    assert ours.read_bytes() == ref.read_bytes()
    # straight from the HF folder (the adapter's layer count feeds the mix): the same file
    direct = quantize_model(tmp_path / "hf", tmp_path / "direct.gguf", qtype, backend="cpu", threads=2).path
    assert direct.read_bytes() == ref.read_bytes()


def test_planner_counts_the_mtp_layer_as_llama_cpp_does(tmp_path, capfd):
    """block_count (4) is the layer count for offloading, but llama.cpp loads no MTP weights and
    gives the MTP layer no KV cache: the planner's weights and KV equal llama.cpp's own buffers
    (it reports them in MiB with 2 decimals; the MTP layer alone is ~1.5 MiB of weights and
    0.125 MiB of cache here). The config.json profile has the same layers."""
    import json
    import re

    import llama_cpp

    from quantdesk.core.planner import estimate_memory, load_profile, profile_from_hf_config
    build_glm4moe(tmp_path / "hf")
    f32 = quantize_model(tmp_path / "hf", tmp_path / "m.gguf", "F32").path
    profile = load_profile(f32)
    assert (profile.n_layer, profile.n_nextn, profile.n_head_kv) == (4, 1, (2, 2, 2, 0))
    planned = profile_from_hf_config(json.loads((tmp_path / "hf" / "config.json").read_text()),
                                     source_type="F32")
    assert (planned.n_layer, planned.n_nextn, planned.n_head_kv) == (4, 1, (2, 2, 2, 0))
    est = estimate_memory(profile, n_ctx=512)
    # llama-cpp-python's own log callback (an in-process LlamaSession of an earlier test may
    # have replaced it with the job's quiet one): the buffer sizes are read from its log
    import ctypes
    from llama_cpp import _logger
    llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    capfd.readouterr()
    llm = llama_cpp.Llama(str(f32), n_ctx=512, n_gpu_layers=0, n_threads=2, use_mmap=False, verbose=True)
    llm.close()
    log = capfd.readouterr().err
    weights = float(re.search(r"CPU model buffer size =\s*([\d.]+) MiB", log)[1])
    kv = float(re.search(r"CPU KV buffer size =\s*([\d.]+) MiB", log)[1])
    assert est.weights_ram / 2**20 == pytest.approx(weights, abs=0.006)
    assert est.kv_ram / 2**20 == pytest.approx(kv, abs=0.006) and kv > 0
    assert estimate_memory(planned, n_ctx=512).kv_ram == est.kv_ram


def test_low_bit_types_without_an_imatrix_are_refused_on_the_trunk(tmp_path):
    """Without an importance matrix the MTP layer takes mix.py's MTP rule (eh_proj: Q2_K, not
    IQ2_XXS), so the refusal names a trunk tensor and offers the calibration, which gives the
    MTP layer data of its own (test_glm4moe_iquant.py); nothing is written. The planner plans
    the file as calibrated: eh_proj IQ2_XXS."""
    from gguf import GGMLQuantizationType as T

    from quantdesk.core.convert import open_source
    from quantdesk.core.planner import load_profile, retype
    from quantdesk.core.quantize.mix import tensor_types
    build_glm4moe(tmp_path / "hf")
    f32 = quantize_model(tmp_path / "hf", tmp_path / "f32.gguf", "F32").path
    with pytest.raises(ConvertError, match=r"^IQ2_XXS needs an importance matrix blk\.0\.ffn_down\.weight "
                                           r".*calibrate on your text"):
        quantize_model(f32, tmp_path / "ours.gguf", "IQ2_XXS")
    assert not (tmp_path / "ours.gguf").exists()
    source = open_source(f32)
    rows = [(t.name, t.shape, t.dtype) for t in source.tensors]
    source.close()
    types = tensor_types(rows, "IQ2_XXS", source.params)
    assert (types["blk.0.ffn_down.weight"], types["blk.3.nextn.eh_proj.weight"]) == ("IQ2_XXS", "Q2_K")
    planned = {n: T(ty).name for n, _, ty in retype(load_profile(f32), "IQ2_XXS").tensors}
    assert planned["blk.3.nextn.eh_proj.weight"] == "IQ2_XXS"
