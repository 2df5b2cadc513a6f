"""FP8 / GPTQ / AWQ dequantizers against the tests' own packers and loop-based references, read
through the streaming view in uneven row chunks; unsupported methods refused in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from quantdesk.core.convert import ConvertError, open_source
from quantdesk.core.convert.dequant import dequantizing
from quantdesk.core.convert.dequant.fp8 import E4M3
from quantdesk.core.convert.safetensors import SafetensorsCheckpoint

from .quantized_ckpt import (E4M3_REF, awq_layer, fp8_layer, gptq_layer, pack_along_cols,
                             pack_along_rows, write_mixed_safetensors)
from .tiny_llama import build_tiny_llama


def _view(tmp_path, tensors, qcfg):
    folder = tmp_path / "ckpt"
    folder.mkdir(exist_ok=True)
    write_mixed_safetensors(folder / "model.safetensors", tensors)
    return dequantizing(SafetensorsCheckpoint(folder), {"quantization_config": qcfg})


def _read_in_chunks(view, name, cuts):
    rows = view.refs[name].shape[0]
    edges = [0, *cuts, rows]
    return np.concatenate([view.read_rows(name, a, b) for a, b in zip(edges, edges[1:])])


def test_e4m3_table_matches_the_bit_layout():
    finite = ~np.isnan(E4M3_REF)
    assert np.array_equal(E4M3[finite], E4M3_REF[finite])
    assert np.isnan(E4M3[0x7F]) and np.isnan(E4M3[0xFF]) and finite.sum() == 254
    assert (E4M3[0x7E], E4M3[0x38], E4M3[0xC0], E4M3[0x01], E4M3[0x08]) == (448.0, 1.0, -2.0, 2.0 ** -9, 2.0 ** -6)


def test_fp8_block_scales_partial_tiles(tmp_path):
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, size=(300, 260)).astype(np.uint8)
    codes[(codes & 0x7F) == 0x7F] = 0x3F             # no NaN codes
    scale = rng.uniform(0.5, 2.0, size=(3, 3)).astype(np.float32)
    want = E4M3_REF[codes] * scale[np.arange(300)[:, None] // 128, np.arange(260)[None, :] // 128]
    view = _view(tmp_path, {"l.weight": ("F8_E4M3", codes), "l.weight_scale_inv": ("F32", scale),
                            "l.activation_scale": ("F32", np.ones(1, np.float32)),
                            "norm.weight": ("F32", np.ones(7, np.float32))},
                 {"quant_method": "fp8", "weight_block_size": [128, 128]})
    assert view.names() == ["l.weight", "norm.weight"]
    assert view.refs["l.weight"].shape == (300, 260)
    np.testing.assert_array_equal(_read_in_chunks(view, "l.weight", [1, 127, 129, 256]), want)
    np.testing.assert_array_equal(view.load("l.weight"), want)


@pytest.mark.parametrize("per_row", [False, True])
def test_fp8_per_tensor_and_per_row_scale(tmp_path, per_row):
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 0x7F, size=(64, 32)).astype(np.uint8)
    scale = (rng.uniform(0.1, 1, (64, 1)) if per_row else np.array([0.25])).astype(np.float32)
    view = _view(tmp_path, {"l.weight": ("F8_E4M3", codes), "l.weight_scale": ("F32", scale)},
                 {"quant_method": "fp8"})
    want = E4M3_REF[codes] * (scale if per_row else scale[0])
    np.testing.assert_array_equal(_read_in_chunks(view, "l.weight", [10, 33]), want)


def test_fp8_scale_of_the_wrong_shape_is_refused(tmp_path):
    codes = np.zeros((256, 256), np.uint8)
    with pytest.raises(ConvertError, match=r"^fp8 tensor l.weight \[256, 256\] has a scale of shape \[3, 2\], "
                                           r"expected \[2, 2\] for 128x128 blocks$"):
        _view(tmp_path, {"l.weight": ("F8_E4M3", codes), "l.weight_scale_inv": ("F32", np.ones((3, 2), np.float32))},
              {"quant_method": "fp8", "weight_block_size": [128, 128]})


def test_fp8_quantized_weights_round_trip():
    w = np.random.default_rng(3).standard_normal((256, 384)).astype(np.float32)
    codes, scale, deq = fp8_layer(w)
    assert np.abs(deq - w).max() / np.abs(w).max() < 0.07   # e4m3 keeps 3 mantissa bits


@pytest.mark.parametrize("bits,v1,act_order", [(4, True, True), (4, False, False), (8, True, False),
                                               (2, False, True)])
def test_gptq(tmp_path, bits, v1, act_order):
    w = np.random.default_rng(bits).standard_normal((96, 256)).astype(np.float32) * 0.1
    parts, want = gptq_layer(w, bits=bits, group=64, act_order=act_order, v1=v1)
    if not act_order:
        del parts["g_idx"]                       # old checkpoints without g_idx: i // group_size
    view = _view(tmp_path, {f"m.{k}": v for k, v in parts.items()},
                 {"quant_method": "gptq", "bits": bits, "group_size": 64, "desc_act": act_order,
                  "checkpoint_format": "gptq" if v1 else "gptq_v2"})
    assert view.names() == ["m.weight"] and view.refs["m.weight"].shape == (96, 256)
    got = _read_in_chunks(view, "m.weight", [3, 8, 50])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.abs(got - w).max() < (0.1 if bits >= 4 else 0.5)   # and it is the weight


def test_gptq_unpacking_order_is_lowest_bits_first():
    q = np.arange(16, dtype=np.int64).reshape(16, 1) % 16
    assert pack_along_rows(q, 4).view(np.uint32)[0, 0] == 0x76543210
    assert pack_along_cols(q.T, 4).view(np.uint32)[0, 0] == 0x76543210


def test_awq(tmp_path):
    w = np.random.default_rng(5).standard_normal((80, 128)).astype(np.float32) * 0.1
    parts, want = awq_layer(w, group=32)
    view = _view(tmp_path, {f"m.{k}": v for k, v in parts.items()} | {"m.bias": ("F16", np.zeros(80))},
                 {"quant_method": "awq", "bits": 4, "group_size": 32, "version": "GEMM"})
    assert view.names() == ["m.weight", "m.bias"] and view.refs["m.weight"].shape == (80, 128)
    np.testing.assert_allclose(_read_in_chunks(view, "m.weight", [5, 13, 40]), want, rtol=1e-6, atol=1e-7)
    # the interleave: column 1 of a group of 8 is the word's nibble 4 (bits 16..19)
    q = np.zeros((1, 8), np.int64)
    q[0, 1] = 9
    assert pack_along_cols(q, 4, [0, 2, 4, 6, 1, 3, 5, 7]).view(np.uint32)[0, 0] == 9 << 16


def _hf(tmp_path, qcfg):
    folder = tmp_path / "hf"
    build_tiny_llama(folder, n_layer=1, dtype="BF16")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["quantization_config"] = qcfg
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("qcfg,message", [
    ({"quant_method": "bitsandbytes", "load_in_4bit": True},
     r"^quantization method bitsandbytes is not supported \(supported: fp8, gptq, awq"),
    ({"load_in_8bit": True}, r"^quantization method bitsandbytes is not supported"),
    ({"quant_method": "hqq"}, r"^quantization method hqq is not supported"),
    ({"quant_method": "awq", "version": "gemv"}, r"^AWQ version gemv is not supported"),
    ({"quant_method": "gptq", "bits": 3}, r"^GPTQ with 3 bits is not supported"),
    ({"quant_method": "gptq", "bits": 4, "checkpoint_format": "marlin"},
     r"^GPTQ checkpoint format marlin is not supported"),
    ({"quant_method": "fp8", "fmt": "e5m2"}, r"^fp8 format e5m2 is not supported"),
    ({"quant_method": "fp8"}, r"^quantization_config says fp8 but no tensor is stored that way$"),
])
def test_unsupported_quantization_is_one_line(tmp_path, qcfg, message):
    with pytest.raises(ConvertError, match=message) as err:
        open_source(_hf(tmp_path, qcfg))
    assert "\n" not in str(err.value)


def test_gptq_layer_missing_scales_is_named(tmp_path):
    w = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    parts, _ = gptq_layer(w, group=32)
    del parts["scales"]
    with pytest.raises(ConvertError, match=r"^GPTQ layer m has no scales tensor$"):
        _view(tmp_path, {f"m.{k}": v for k, v in parts.items()}, {"quant_method": "gptq", "bits": 4})


def test_bad_g_idx_is_refused(tmp_path):
    w = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    parts, _ = gptq_layer(w, group=32)
    parts["g_idx"] = ("I32", np.full(64, 5, np.int32))
    view = _view(tmp_path, {f"m.{k}": v for k, v in parts.items()}, {"quant_method": "gptq", "bits": 4})
    with pytest.raises(ConvertError, match=r"g_idx names a group outside 0\.\.1"):
        view.load("m.weight")


@pytest.mark.parametrize("method, side", [("gptq", "quantize_config.json"), ("awq", "quant_config.json")])
def test_settings_beside_config_json(tmp_path, method, side):
    """Older AutoGPTQ / AutoAWQ exports keep their settings in their own file, not config.json."""
    from .quantized_ckpt import quantize_checkpoint
    folder = tmp_path / "hf"
    weights = build_tiny_llama(folder, n_layer=1, dtype="F32")
    values = quantize_checkpoint(folder, weights, method, n_layer=1)
    cfg = json.loads((folder / "config.json").read_text())
    q = cfg.pop("quantization_config")
    if method == "awq":   # AutoAWQ's names
        q = {"w_bit": 4, "q_group_size": 64, "zero_point": True, "version": "GEMM"}
    else:
        q.pop("quant_method")
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / side).write_text(json.dumps(q))
    source = open_source(folder)
    up = next(t for t in source.tensors if t.name == "blk.0.ffn_up.weight")
    np.testing.assert_array_equal(up.load(), values["model.layers.0.mlp.up_proj.weight"])
    source.close()


CT = {"quant_method": "compressed-tensors", "format": "float-quantized",
      "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
          "type": "float", "num_bits": 8, "strategy": "channel", "block_structure": None}}},
      "ignore": ["lm_head"]}


def test_compressed_tensors_fp8_per_channel(tmp_path):
    """llm-compressor's FP8 (RedHatAI / neuralmagic releases): weight_scale per output channel."""
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 0x7F, size=(48, 64)).astype(np.uint8) | (rng.integers(0, 2, (48, 64)) << 7).astype(np.uint8)
    scale = rng.uniform(0.01, 0.1, (48, 1)).astype(np.float32)
    view = _view(tmp_path, {"l.weight": ("F8_E4M3", codes), "l.weight_scale": ("F32", scale),
                            "l.input_scale": ("F32", np.ones(1, np.float32))}, CT)
    assert view.names() == ["l.weight"]
    np.testing.assert_array_equal(view.load("l.weight"), E4M3_REF[codes] * scale)


def test_compressed_tensors_int_formats_are_refused(tmp_path):
    with pytest.raises(ConvertError, match=r"^compressed-tensors format pack-quantized is not supported"):
        open_source(_hf(tmp_path, {**CT, "format": "pack-quantized"}))


def test_mxfp4_is_left_to_the_gpt_oss_adapter_only():
    from quantdesk.core.convert.dequant import check_quantization
    q = {"quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": ["router"]}}
    check_quantization({"architectures": ["GptOssForCausalLM"], **q})     # its adapter carries them
    with pytest.raises(ConvertError, match=r"^quantization method mxfp4 is not supported"):
        check_quantization({"architectures": ["LlamaForCausalLM"], **q})
