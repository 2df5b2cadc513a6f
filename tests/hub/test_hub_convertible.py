"""Discover's "can we convert it?" judged from config.json fetched through huggingface_hub from the
local fake hub, by the converter registry's own lookup."""
from __future__ import annotations

import json

import pytest

from quantdesk.core import hub

from .conftest import LLAMA_CONFIG, ST_REPO


def _repo(fakehub, repo_id, config=None, **extra):
    files = {"model.safetensors": b"\0" * 2048}
    if config is not None:
        files["config.json"] = json.dumps(config).encode()
    fakehub.add_repo(repo_id, files, tags=["safetensors"],
                     safetensors={"parameters": {"BF16": 1000}, "total": 1000}, **extra)
    return hub.repo_details(repo_id)


def test_known_architecture_is_convertible(hub_env, fakehub):
    got = hub.convertible(hub.repo_details(ST_REPO))
    assert got == hub.Convertible(True, None, "LlamaForCausalLM")
    assert any("config.json" in str(r) for r in fakehub.requests)


@pytest.mark.parametrize("config, reason", [
    ({**LLAMA_CONFIG, "architectures": ["RwkvForCausalLM"]}, r"^unsupported architecture RwkvForCausalLM \(supported: "),
    ({**LLAMA_CONFIG, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}},
     r"^quantization method bitsandbytes is not supported \(supported: fp8, gptq, awq"),
    ({**LLAMA_CONFIG, "quantization_config": {"quant_method": "awq", "version": "exllama"}},
     r"^AWQ version exllama is not supported"),
    ({**LLAMA_CONFIG, "architectures": []}, r"^config.json names no architecture$"),
    (None, r"^no config.json in the repo$"),
])
def test_refusals_are_one_line(hub_env, fakehub, config, reason):
    got = hub.convertible(_repo(fakehub, "x-org/model", config))
    assert not got.ok
    assert got.reason and "\n" not in got.reason
    import re
    assert re.match(reason, got.reason), got.reason


@pytest.mark.parametrize("qcfg", [
    {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]},
    {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": True},
    {"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm"},
])
def test_quantized_checkpoints_we_dequantize_are_convertible(hub_env, fakehub, qcfg):
    got = hub.convertible(_repo(fakehub, "q-org/model", {**LLAMA_CONFIG, "quantization_config": qcfg}))
    assert got.ok and got.reason is None


def test_a_family_added_to_the_registry_shows_up(hub_env, fakehub, monkeypatch):
    from quantdesk.core.convert import registry
    from quantdesk.core.convert.architectures import Adapter
    details = _repo(fakehub, "new-org/model", {**LLAMA_CONFIG, "architectures": ["BrandNewForCausalLM"]})
    assert not hub.convertible(details).ok
    monkeypatch.setitem(registry.ADAPTERS, "BrandNewForCausalLM", Adapter)
    assert hub.convertible(details) == hub.Convertible(True, None, "BrandNewForCausalLM")


def test_search_results_carry_the_mark(hub_env, fakehub):
    """Each safetensors result is judged from the hub's summary of its config.json (expand=config):
    no request per repo."""
    _repo(fakehub, "odd-org/Rwkv-Thing", {**LLAMA_CONFIG, "architectures": ["RwkvForCausalLM"]})
    _repo(fakehub, "bnb-org/Llama-4bit", {**LLAMA_CONFIG, "quantization_config": {"quant_method": "bitsandbytes"}})
    _repo(fakehub, "gptq-org/Llama-GPTQ", {**LLAMA_CONFIG, "quantization_config": {"quant_method": "gptq", "bits": 4}})
    fakehub.requests.clear()
    pager = hub.SearchPager("", filter="safetensors", page_size=10)
    results = {r.repo_id: r for r in pager.next_page()}
    assert len(fakehub.requests) == 1
    assert (results[ST_REPO].convertible, results[ST_REPO].convert_note) == (True, None)
    assert results["gptq-org/Llama-GPTQ"].convertible is True
    assert results["odd-org/Rwkv-Thing"].convertible is False
    assert results["odd-org/Rwkv-Thing"].convert_note.startswith("unsupported architecture RwkvForCausalLM")
    assert results["bnb-org/Llama-4bit"].convert_note.startswith("quantization method bitsandbytes is not supported")
    gguf = hub.SearchPager("", filter="gguf", page_size=3).next_page()
    assert all(r.convertible is None for r in gguf)


def test_gptq_repo_is_planned_from_its_config_not_the_packed_count(hub_env, fakehub):
    """The hub counts a GPTQ repo's int32 words, 1/8 of its weights: the recommendation's sizes
    must be the model's, as for the same model in bf16."""
    from quantdesk.core.hub.fit import recommend_for_safetensors
    plain = _repo(fakehub, "a-org/llama", LLAMA_CONFIG)
    packed = _repo(fakehub, "b-org/llama-gptq", {**LLAMA_CONFIG, "quantization_config":
                                                 {"quant_method": "gptq", "bits": 4}})
    plain.parameters = None
    rows_plain = {r["type"]: r["size_bytes"] for r in recommend_for_safetensors(plain, n_ctx=2048)[0]}
    rows_packed = {r["type"]: r["size_bytes"] for r in recommend_for_safetensors(packed, n_ctx=2048)[0]}
    assert packed.parameters == 1000 and rows_packed == rows_plain and rows_plain["Q8_0"] > 1 << 30


def test_a_vision_tower_we_convert_is_marked(hub_env, fakehub):
    """A multimodal config whose vision projector the mmproj converter takes says so; a text
    model or an unsupported vision family does not."""
    from quantdesk.app.pages.discover.convert_mark import outlook_text
    gemma3 = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
              "text_config": {**LLAMA_CONFIG, "model_type": "gemma3_text"},
              "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 64,
                                "num_hidden_layers": 2, "num_attention_heads": 4,
                                "intermediate_size": 128, "image_size": 56, "patch_size": 7}}
    got = hub.convertible(_repo(fakehub, "g-org/gemma3", gemma3))
    assert got == hub.Convertible(True, None, "Gemma3ForConditionalGeneration", True)
    assert "vision projector (mmproj) too" in outlook_text(got, ([], None, "no plan"), str)
    assert hub.convertible(hub.repo_details(ST_REPO)).vision_projector is False
    smolvlm = {"architectures": ["Idefics3ForConditionalGeneration"], "model_type": "idefics3",
               "scale_factor": 2, "text_config": {**LLAMA_CONFIG, "model_type": "llama"},
               "vision_config": {"model_type": "idefics3", "hidden_size": 64, "num_hidden_layers": 2,
                                 "num_attention_heads": 4, "intermediate_size": 128,
                                 "image_size": 32, "patch_size": 4}}
    got = hub.convertible(_repo(fakehub, "s-org/smolvlm", smolvlm))
    assert got == hub.Convertible(True, None, "Idefics3ForConditionalGeneration", True)
    llava = {**gemma3, "architectures": ["LlavaForConditionalGeneration"]}
    assert hub.convertible(_repo(fakehub, "l-org/llava", llava)).vision_projector is False
