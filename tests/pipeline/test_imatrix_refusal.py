"""The file types llama.cpp refuses without an importance matrix are refused the same way, in
one line that offers the calibration, before anything is written; an imatrix lacking a tensor
such a type needs is refused too (llama.cpp: "Missing importance matrix for tensor ...")."""
from __future__ import annotations

import pytest

from quantdesk.core.convert import ConvertError, open_source
from quantdesk.core.quantize import FILE_TYPES, quantize_model

from .conftest import imatrix_values, write_imatrix


@pytest.mark.parametrize("qtype", [n for n, f in FILE_TYPES.items() if f.needs_imatrix])
def test_types_needing_an_imatrix_are_refused_without_one(tiny_f32, tmp_path, qtype):
    out = tmp_path / f"{qtype}.gguf"
    with pytest.raises(ConvertError) as info:
        quantize_model(tiny_f32["a"], out, qtype, backend="cpu")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{qtype} needs an importance matrix")
    assert "Calibrate on my text" in message and "quantdesk imatrix" in message
    assert not out.exists() and not list(tmp_path.iterdir())


def test_an_imatrix_without_a_needed_tensor_is_refused(tiny_f32, tmp_path):
    source = open_source(tiny_f32["a"])
    values = imatrix_values(source.tensors)
    source.close()
    del values["blk.1.attn_q.weight"]          # IQ3_XS gives attn_q IQ3_XXS
    imatrix = write_imatrix(tmp_path / "im.gguf", values)
    with pytest.raises(ConvertError, match="the one given lacks blk.1.attn_q.weight"):
        quantize_model(tiny_f32["a"], tmp_path / "out.gguf", "IQ3_XS", backend="cpu",
                       imatrix=imatrix)
    assert not (tmp_path / "out.gguf").exists()


@pytest.mark.parametrize("qtype", ["IQ3_S", "IQ3_M"])
def test_iq3_s_and_iq3_m_need_no_imatrix(tiny_f32, tmp_path, qtype):
    assert not FILE_TYPES[qtype].needs_imatrix
    result = quantize_model(tiny_f32["a"], tmp_path / "out.gguf", qtype, backend="cpu")
    assert "IQ3_S" in result.tensor_types.values()
