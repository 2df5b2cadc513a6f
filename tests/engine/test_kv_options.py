"""KV-cache types, flash attention and prompt lookup as load options: names, the one rule
between them (a quantized V cache needs flash attention), and every door saying it in one line."""
from __future__ import annotations

import re

import pytest

from quantdesk.core.cli import main
from quantdesk.core.engine import EngineClient, EngineError
from quantdesk.core.engine.kv_cache import (KV_TYPES, check_kv_options, flash_attn_enabled,
                                            kv_bytes_per_element, kv_ggml_type, parse_flash_attn,
                                            parse_kv_type, parse_prompt_lookup)
from quantdesk.core.runtime import LoadRequest, ModelManager
from quantdesk.core.runtime.chat import ChatError, ChatSession, load_request

V_NEEDS_FA = "a quantized V cache (q8_0) needs flash attention"
V_NEEDS_FA_RE = re.escape(V_NEEDS_FA)


def test_every_kv_type_llama_cpp_accepts_has_its_ggml_layout():
    assert set(KV_TYPES) == {"f16", "f32", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0",
                             "q5_1"}
    # ggml's enum ids (ggml.h) and block layouts: q8_0 34 bytes / 32, q4_0 18 / 32.
    assert [kv_ggml_type(t) for t in ("f32", "f16", "q4_0", "q8_0", "iq4_nl", "bf16")] == \
        [0, 1, 2, 8, 20, 30]
    assert kv_bytes_per_element("q8_0") == 34 / 32 and kv_bytes_per_element("Q4_0") == 18 / 32
    assert kv_bytes_per_element("f16") == 2.0


def test_names_are_normalised_and_bad_ones_name_the_choices():
    assert parse_kv_type("Q8_0") == "q8_0" and parse_kv_type(None) == "f16"
    with pytest.raises(ValueError, match="unknown KV-cache type 'q3_k'; choose one of f16"):
        parse_kv_type("q3_k")
    assert [parse_flash_attn(v) for v in (True, False, None, "ON", "disabled", "auto")] == \
        ["on", "off", "auto", "on", "off", "auto"]
    with pytest.raises(ValueError, match="on, off or auto"):
        parse_flash_attn("sometimes")
    assert [parse_prompt_lookup(v) for v in (None, False, True, 0, "4")] == [0, 0, 10, 0, 4]
    with pytest.raises(ValueError, match="0 to 64"):
        parse_prompt_lookup(-1)


def test_quantized_v_needs_flash_attention_quantized_k_does_not():
    with pytest.raises(ValueError, match=V_NEEDS_FA_RE):
        check_kv_options("f16", "q8_0", "off")
    check_kv_options("q4_0", "f16", "off")       # llama.cpp loads this (checked by hand)
    check_kv_options("q8_0", "q8_0", "auto")     # llama.cpp's auto turns it on
    check_kv_options("q8_0", "q4_0", "on")
    assert flash_attn_enabled("auto", "cpu") and flash_attn_enabled("auto", "vulkan", "q8_0")
    assert not flash_attn_enabled("auto", "vulkan") and not flash_attn_enabled("off", "cpu")


def test_load_request_normalises_and_the_options_are_part_of_the_host_key(starter_model):
    plain = LoadRequest(starter_model, n_ctx=512, gpu_layers=0)
    assert (plain.kv_type_k, plain.kv_type_v, plain.flash_attn, plain.prompt_lookup) == \
        ("f16", "f16", "auto", 0)
    q8 = LoadRequest(starter_model, n_ctx=512, gpu_layers=0, kv_type_k="Q8_0", kv_type_v="q8_0",
                     flash_attn=True)
    assert q8 == LoadRequest(starter_model, n_ctx=512, gpu_layers=0, kv_type_k="q8_0",
                             kv_type_v="q8_0", flash_attn="on")
    manager = ModelManager()
    keys = {manager.resolve(r).key for r in (
        plain, q8, LoadRequest(starter_model, n_ctx=512, gpu_layers=0, flash_attn="off"),
        LoadRequest(starter_model, n_ctx=512, gpu_layers=0, prompt_lookup=8))}
    assert len(keys) == 4                      # never the same host for other settings
    with pytest.raises(ValueError, match=V_NEEDS_FA_RE):
        LoadRequest(starter_model, kv_type_v="q8_0", flash_attn="off")


def test_the_plan_follows_the_kv_type_asked(starter_model):
    manager = ModelManager()
    f16 = manager.resolve(LoadRequest(starter_model, n_ctx=4096, gpu_layers=0))
    q4 = manager.resolve(LoadRequest(starter_model, n_ctx=4096, gpu_layers=0, kv_type_k="q4_0",
                                     kv_type_v="q4_0"))
    assert (q4.plan.kv_type_k, q4.plan.kv_type_v, q4.plan.flash_attn) == ("q4_0", "q4_0", True)
    # SmolLM2: 30 layers x 3 KV heads x 64 dims for K and V, per token.
    assert f16.plan.memory.kv_ram == 4096 * 30 * 2 * 192 * 2
    assert q4.plan.memory.kv_ram == 4096 * 30 * 2 * 192 * 18 // 32
    assert q4.to_json()["kv_type_v"] == "q4_0" and q4.to_json()["flash_attn"] == "auto"


def test_conversation_settings_carry_the_options_and_refusals_are_chat_errors(tmp_path,
                                                                              starter_model):
    req = load_request(starter_model, {"n_ctx": 1024, "kv_type_k": "q8_0", "kv_type_v": "q8_0",
                                       "flash_attn": "on", "prompt_lookup": 6})
    assert (req.kv_type_k, req.kv_type_v, req.flash_attn, req.prompt_lookup) == \
        ("q8_0", "q8_0", "on", 6)
    assert load_request(starter_model, {}).kv_type_v == "f16"
    from quantdesk.core.chatstore import ChatStore
    store = ChatStore(tmp_path / "chats.db")
    session = ChatSession(store, ModelManager())
    cid = session.new_conversation(model_path=str(starter_model), settings={
        "kv_type_v": "q4_0", "flash_attn": "off"})
    with pytest.raises(ChatError, match="a quantized V cache \\(q4_0\\) needs flash attention"):
        session.send("hello")
    assert store.messages(cid) == []            # nothing stored for a refused load
    store.close()


def test_engine_client_refuses_before_starting_a_process(starter_model):
    client = EngineClient()
    with pytest.raises(EngineError, match=V_NEEDS_FA_RE) as info:
        client.load(starter_model, type_v="q8_0", flash_attn="off")
    assert "\n" not in str(info.value) and client.host_pid is None


def test_chat_cli_says_it_in_one_line(capsys, starter_model):
    code = main(["chat", str(starter_model), "--prompt", "hi", "--kv-type", "q8_0",
                 "--flash-attn", "off"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("quantdesk: " + V_NEEDS_FA) and "\n" not in err
    with pytest.raises(SystemExit) as bad:
        main(["chat", str(starter_model), "--prompt", "hi", "--kv-type", "q3_k"])
    assert bad.value.code == 2 and "unknown KV-cache type 'q3_k'" in capsys.readouterr().err


def test_chat_cli_loads_k_and_v_types_apart_with_flash_attention_and_prompt_lookup(
        capsys, starter_model):
    """`--kv-type K,V`, `--flash-attn on` and `--prompt-lookup N` reach the load the model
    manager makes (its plan in --json says so) and the greedy reply is still the right one."""
    import json
    code = main(["chat", str(starter_model), "--prompt", "What is the capital of France?",
                 "--kv-type", "f16,q8_0", "--flash-attn", "on", "--prompt-lookup", "4",
                 "--temperature", "0", "--max-tokens", "16", "--ctx", "1024", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    plan = data["plan"]
    assert (plan["kv_type_k"], plan["kv_type_v"], plan["flash_attn"], plan["prompt_lookup"]) \
        == ("f16", "q8_0", "on", 4)
    assert "Paris" in data["text"]
