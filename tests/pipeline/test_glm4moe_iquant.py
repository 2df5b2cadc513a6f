"""GLM-4.5 as IQ2_XXS (how it is run locally) with an importance matrix from `quantdesk imatrix`.

Calibration runs the multi-token-prediction (MTP) layer as llama.cpp's MTP drafting runs it, so
its matrices get importance data of their own (checked against a numpy recomputation); the one
MTP tensor nothing multiplies, nextn.embed_tokens (a lookup table), takes mix.py's MTP rule (Q2_K,
what llama.cpp gives token_embd at IQ2_XXS). The file is llama_model_quantize's byte for byte given
the same imatrix and that one --tensor-type (without it llama.cpp refuses the file); llama.cpp runs
it, trunk and MTP graph, close to F16; `quantdesk plan` promises its size.

The tiny GLM-4.5 here has a hidden size of 256, so its matrices hold 256-weight i-quant blocks
(with 128 most would fall back to IQ4_NL and need no importance data at all).
"""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from gguf import GGUFReader

from quantdesk.core.cli import main
from quantdesk.core.quantize import FILE_TYPES, quantize_model

from .conftest import llama_cpp_quantize
from .test_convert_hf import _llama_logits
from .test_glm4moe import _load_with_mtp, _mtp_logits
from .tiny_glm4moe import _layer, _norm, build_glm4moe

CTX, CHUNKS = 64, 4
# the MTP layer's matrix multiplications (blk.3: a MoE layer plus eh_proj and its own head)
MTP_MATMULS = {f"blk.3.{n}.weight" for n in (
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps",
    "ffn_down_exps", "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp", "nextn.eh_proj",
    "nextn.shared_head_head")}
EMBED = "blk.3.nextn.embed_tokens.weight"


@pytest.fixture(scope="module")
def glm45(tmp_path_factory):
    """(folder, HF weights, F32 GGUF, F16 GGUF, imatrix written by `quantdesk imatrix`)."""
    from quantdesk.core.evaluate import sample_text_path
    tmp = tmp_path_factory.mktemp("glm45-iq")
    weights = build_glm4moe(tmp / "hf", n_embd=256)
    f32 = quantize_model(tmp / "hf", tmp / "glm-F32.gguf", "F32").path
    f16 = quantize_model(tmp / "hf", tmp / "glm-F16.gguf", "F16").path
    imx = tmp / "glm.imatrix.gguf"
    assert main(["imatrix", str(f32), "--text", str(sample_text_path()), "-o", str(imx),
                 "--ctx", str(CTX), "--chunks", str(CHUNKS), "--threads", "2"]) == 0
    return tmp / "hf", weights, f32, f16, imx


def _types(path) -> dict[str, str]:
    return {t.name: t.tensor_type.name for t in GGUFReader(path).tensors}


def _eh_proj_inputs(weights: dict, f32, text: str, *, shift: bool = True) -> np.ndarray:
    """Sum over the calibration windows of the squared eh_proj input, in numpy: each token's
    enorm(MTP embedding) next to hnorm(the trunk's final normed hidden state one position
    before; zeros at the first), as llama.cpp's MTP drafting pairs them."""
    from quantdesk.core.evaluate import scoring
    from quantdesk.core.evaluate.llama_session import LlamaSession
    session = LlamaSession(str(f32), n_ctx=CTX, n_threads=2)
    try:
        tokens, bos = session.tokenize(text), session.bos
    finally:
        session.close()
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    total = np.zeros(512)
    for c in range(CHUNKS):
        window = scoring.chunk_tokens(tokens, c, CTX, bos)
        x = w["model.embed_tokens.weight"][window]
        for i in range(3):
            x = _layer(w, i, x)
        h = _norm(x, w["model.norm.weight"])
        prev = np.vstack([np.zeros((1, h.shape[1])), h[:-1]]) if shift else h
        e = _norm(w["model.layers.3.embed_tokens.weight"][window], w["model.layers.3.enorm.weight"])
        total += np.square(np.concatenate([e, _norm(prev, w["model.layers.3.hnorm.weight"])], 1)).sum(0)
    return total


def test_calibration_runs_the_mtp_layer(glm45):
    from quantdesk.core.evaluate import read_text, sample_text_path
    from quantdesk.core.imatrix import read_imatrix
    _, weights, f32, _, imx_path = glm45
    imx = read_imatrix(imx_path)
    assert {n for n in imx.entries if n.startswith("blk.3.")} == MTP_MATMULS   # no embed_tokens
    sums, counts = imx.entries["blk.3.nextn.eh_proj.weight"]
    assert counts.tolist() == [CHUNKS * CTX]              # every position of every window
    text = read_text(sample_text_path())
    want = _eh_proj_inputs(weights, f32, text)
    # the embedding half depends on the tokens alone: exact up to float32 sums
    np.testing.assert_allclose(sums[0][:256], want[:256], rtol=1e-5)
    # the hidden-state half went through the trunk with llama.cpp's F16 KV cache (~3e-4 each)
    rel = np.abs(sums[0][256:] - want[256:]) / want[256:]
    assert np.median(rel) < 1e-3 and rel.max() < 1e-2
    # and it tells pairings apart: each token with its own hidden state is ~1.4e-2 off
    wrong = _eh_proj_inputs(weights, f32, text, shift=False)
    assert np.median(np.abs(sums[0][256:] - wrong[256:]) / wrong[256:]) > 5e-3


def test_iq2_xxs_is_llama_cpp_byte_for_byte_and_runs(glm45, tmp_path, capfd):
    from quantdesk.core.imatrix import load_imatrix
    _, _, f32, f16, imx = glm45
    ours = quantize_model(f32, tmp_path / "ours.gguf", "IQ2_XXS", imatrix=imx, backend="cpu",
                          threads=2).path
    types = _types(ours)
    assert {types[n] for n in ("blk.3.nextn.eh_proj.weight", "blk.3.nextn.shared_head_head.weight",
                               "blk.3.ffn_gate_exps.weight", "blk.3.attn_q.weight")} == {"IQ2_XXS"}
    assert types[EMBED] == "Q2_K" == types["token_embd.weight"]   # the MTP rule, token_embd's type
    means = load_imatrix(imx)
    ftype = FILE_TYPES["IQ2_XXS"].ftype
    with pytest.raises(AssertionError, match="llama_model_quantize failed"):   # without the rule
        llama_cpp_quantize(f32, tmp_path / "refused.gguf", ftype, imatrix=means)
    assert f"Missing importance matrix for tensor {EMBED}" in capfd.readouterr().err
    ref = llama_cpp_quantize(f32, tmp_path / "ref.gguf", ftype, imatrix=means,
                             overrides={r"blk\.3\.nextn\.embed_tokens\.weight": "Q2_K"})
    assert ours.read_bytes() == ref.read_bytes()

    # llama.cpp loads it, MTP layer included, and runs both graphs close to F16. Tolerances: a
    # 2-bit random model, no signal would give a relative RMS error of 1; IQ2_XXS gives 0.34 on the
    # trunk and 0.63 on the MTP graph (eh_proj, MoE layer and head all 2-bit, random inputs).
    assert _load_with_mtp(ours) == (3, 1)
    _, got = _llama_logits(ours)
    _, want = _llama_logits(f16)
    assert np.isfinite(got).all()
    assert np.sqrt(((got - want) ** 2).mean() / (want ** 2).mean()) < 0.45
    tokens = [5, 17, 42, 99, 3, 250, 7, 300, 11, 64]
    hidden = np.random.default_rng(1).standard_normal((len(tokens), 256))
    got, want = _mtp_logits(ours, tokens, hidden), _mtp_logits(f16, tokens, hidden)
    assert np.isfinite(got).all()
    assert np.sqrt(((got - want) ** 2).mean() / (want ** 2).mean()) < 0.8

    # `quantdesk plan` (no imatrix at hand: it assumes one from `quantdesk imatrix`) promises
    # exactly the tensor bytes written, from the GGUF and from the HF folder
    written = sum(int(t.n_bytes) for t in GGUFReader(ours).tensors)
    for src in (f32, glm45[0]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["plan", str(src), "--ctx", "512", "--json"]) == 0
        options = {o["type"]: o for o in json.loads(out.getvalue())["options"]}
        assert options["IQ2_XXS"]["size_bytes"] == written, src


def test_imatrix_without_the_mtp_layer(glm45, tmp_path, capfd):
    """An imatrix from llama-imatrix (or any run that skips the MTP layer) has no MTP entries:
    every MTP tensor that would need one takes the rule (Q2_K); the trunk keeps its i-quants.
    llama.cpp refuses the file; with those tensors retyped by --tensor-type it writes ours."""
    from quantdesk.core.imatrix import load_imatrix
    _, _, f32, _, imx = glm45
    trunk = {n: v for n, v in load_imatrix(imx).items() if not n.startswith("blk.3.")}
    ours = quantize_model(f32, tmp_path / "ours.gguf", "IQ2_XXS", imatrix=trunk, backend="cpu",
                          threads=2).path
    types = _types(ours)
    ruled = sorted(n for n, t in types.items() if n.startswith("blk.3.") and t == "Q2_K")
    assert ruled == sorted(MTP_MATMULS - {"blk.3.attn_k.weight", "blk.3.attn_v.weight",   # Q4_K
                                          "blk.3.attn_output.weight", "blk.3.ffn_gate_inp.weight",
                                          "blk.3.ffn_down_exps.weight",             # 64-wide rows
                                          "blk.3.ffn_down_shexp.weight"} | {EMBED})
    assert types["blk.2.ffn_gate_exps.weight"] == "IQ2_XXS"
    ftype = FILE_TYPES["IQ2_XXS"].ftype
    with pytest.raises(AssertionError, match="llama_model_quantize failed"):
        llama_cpp_quantize(f32, tmp_path / "refused.gguf", ftype, imatrix=trunk)
    assert "Missing importance matrix for tensor blk.3." in capfd.readouterr().err
    overrides = {"^" + n.replace(".", r"\.") + "$": "Q2_K" for n in ruled}
    ref = llama_cpp_quantize(f32, tmp_path / "ref.gguf", ftype, imatrix=trunk, overrides=overrides)
    assert ours.read_bytes() == ref.read_bytes()


@pytest.mark.parametrize("ftype", [f for f, t in FILE_TYPES.items() if t.needs_imatrix])
def test_mtp_rule_for_every_low_bit_type(glm45, ftype):
    """For every file type that needs an importance matrix: with one lacking the MTP layer, the
    MTP tensors that would need it get the type llama.cpp gives token_embd in that file type, the
    trunk keeps its types, and nothing is left for llama.cpp's refusal."""
    from quantdesk.core.convert import open_source
    from quantdesk.core.quantize.file_types import IMATRIX_TENSOR_TYPES, WITHOUT_IMATRIX
    from quantdesk.core.quantize.mix import imatrix_refusal, tensor_types
    source = open_source(glm45[2])
    rows = [(t.name, t.shape, t.dtype) for t in source.tensors]
    source.close()
    every = {n for n, shape, _ in rows if len(shape) >= 2}
    full = tensor_types(rows, ftype, source.params, True, imatrix_names=every)
    trunk_only = every - {n for n in every if n.startswith("blk.3.")}
    got = tensor_types(rows, ftype, source.params, True, imatrix_names=trunk_only)
    changed = {n for n in got if got[n] != full[n]}
    assert changed and all(n.startswith("blk.3.") and full[n] in IMATRIX_TENSOR_TYPES for n in changed)
    assert {got[n] for n in changed} == {WITHOUT_IMATRIX[ftype]} == {got["token_embd.weight"]}
    assert imatrix_refusal(ftype, got, trunk_only) is None
    assert imatrix_refusal(ftype, full, trunk_only) is not None       # what llama.cpp refuses
