"""Importance matrix on SmolLM2-135M: exact statistics, read by llama.cpp's quantizer, and better
quants on held-out text; our kernels' imatrix path byte-identical to ggml_quantize_chunk."""
from __future__ import annotations

import ctypes
import pathlib

import numpy as np
import pytest

from quantdesk.core.evaluate import compare
from quantdesk.core.imatrix import compute_imatrix, load_imatrix, read_imatrix, save_imatrix

IMX_CTX = 256
EVAL_CTX = 128
EVAL_CHUNKS = 4
MATMULS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


@pytest.fixture(scope="module")
def imatrix_file(f32_reference, calibration_text, tmp_path_factory):
    steps = []
    imx = compute_imatrix(f32_reference, calibration_text, n_ctx=IMX_CTX, threads=2,
                          dataset="sample_en.txt", progress=lambda d, n: steps.append((d, n)))
    assert steps[-1][0] == steps[-1][1] == imx.chunk_count
    return save_imatrix(tmp_path_factory.mktemp("imx") / "smollm2.imatrix.gguf", imx)


def _tokens(model, text: str) -> list[int]:
    import llama_cpp
    llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
    try:
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        add_bos = llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model))
        return tokens, (llm.token_bos() if add_bos else None)
    finally:
        llm.close()


@pytest.mark.slow
def test_statistics_are_the_matmul_inputs(imatrix_file, f32_reference, calibration_text):
    from gguf import GGUFReader
    imx = read_imatrix(imatrix_file)
    names = {f"blk.{i}.{m}.weight" for i in range(30) for m in MATMULS}
    assert set(imx.entries) == names
    n_tokens = imx.chunk_count * IMX_CTX
    assert imx.chunk_size == IMX_CTX and imx.datasets == ["sample_en.txt"]
    assert all(c.tolist() == [n_tokens] for _, c in imx.entries.values())
    # Layer 0's attention input, recomputed in numpy from the F32 weights: RMSNorm(embedding).
    reader = GGUFReader(f32_reference)
    t = {x.name: x for x in reader.tensors}
    emb = np.asarray(t["token_embd.weight"].data, dtype=np.float32)
    norm = np.asarray(t["blk.0.attn_norm.weight"].data, dtype=np.float32)
    eps = float(reader.get_field("llama.attention.layer_norm_rms_epsilon").contents())
    tokens, bos = _tokens(f32_reference, calibration_text)
    expected = np.zeros(emb.shape[1])
    for c in range(imx.chunk_count):
        window = list(tokens[c * IMX_CTX:(c + 1) * IMX_CTX])
        if bos is not None:
            window[0] = bos
        x = emb[window].astype(np.float64)
        x = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps) * norm
        expected += (x * x).sum(axis=0)
    for m in ("attn_q", "attn_k", "attn_v"):
        np.testing.assert_allclose(imx.entries[f"blk.0.{m}.weight"][0][0], expected, rtol=2e-3)


@pytest.mark.slow
def test_llama_cpp_quants_with_our_imatrix_are_better_on_heldout_text(
        imatrix_file, make_quant, f32_reference, heldout_text, tmp_path):
    models = [make_quant("Q4_K_M"), make_quant("Q4_K_M", imatrix_file),
              make_quant("Q3_K_M"), make_quant("Q3_K_M", imatrix_file)]
    r = compare(models, f32_reference, heldout_text, n_ctx=EVAL_CTX, max_chunks=EVAL_CHUNKS,
                threads=2, cache_dir=tmp_path)
    assert models[0].read_bytes() != models[1].read_bytes()     # llama.cpp used the matrix
    assert r[1].kld_mean < r[0].kld_mean, (r[0].kld_mean, r[1].kld_mean)
    assert r[3].kld_mean < r[2].kld_mean, (r[2].kld_mean, r[3].kld_mean)


def _ggml_quantize_chunk():
    import llama_cpp
    from llama_cpp._ctypes_extensions import load_shared_library
    lib = load_shared_library("ggml-base", pathlib.Path(llama_cpp.__file__).parent / "lib")
    f = lib.ggml_quantize_chunk
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                  ctypes.c_int64, ctypes.c_void_p]
    f.restype = ctypes.c_size_t
    return f


@pytest.mark.slow
@pytest.mark.parametrize("qtype,ggml_type,tensor", [("Q4_K", 12, "blk.3.ffn_down.weight"),
                                                     ("Q5_0", 6, "blk.3.attn_q.weight")])
def test_our_kernels_with_our_imatrix_match_ggml(imatrix_file, f32_reference, qtype, ggml_type,
                                                 tensor):
    from gguf import GGUFReader

    from quantdesk import kernels
    weights = np.asarray({x.name: x for x in GGUFReader(f32_reference).tensors}[tensor].data,
                         dtype=np.float32)[:32].copy()
    imx = load_imatrix(imatrix_file)[tensor]
    ours = kernels.quantize(weights, qtype, backend="cpu", imatrix=imx)
    ref = np.zeros_like(ours)
    _ggml_quantize_chunk()(ggml_type, weights.ctypes.data, ref.ctypes.data, 0, weights.shape[0],
                           weights.shape[1], imx.ctypes.data)
    assert ours.tobytes() == ref.tobytes()
