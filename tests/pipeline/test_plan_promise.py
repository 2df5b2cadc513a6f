"""`quantdesk plan SRC --json` promises, per mix, exactly the tensor bytes `quantdesk quantize`
then writes — for a model whose rows are not multiples of 256 (hidden 320, ffn 864), so every
K-quant's fallback type (llama.cpp's tensor_type_fallback) is priced and written."""
from __future__ import annotations

import json

import pytest
from gguf import GGUFReader

from quantdesk.core.cli import main
from quantdesk.core.runtime.quantize import OUTPUT_TYPES

from .tiny_llama import build_tiny_llama


@pytest.fixture(scope="module")
def odd_rows(tmp_path_factory):
    """An HF folder whose matrices have rows of 320 and 864 weights (neither divides by 256)."""
    folder = tmp_path_factory.mktemp("odd-rows") / "odd-rows"
    build_tiny_llama(folder, n_layer=2, n_embd=320, n_ff=864, n_head=4, n_head_kv=2, seed=3)
    return folder


@pytest.fixture(scope="module")
def promised(odd_rows):
    """{type: option} from `quantdesk plan SRC --json` on the HF folder."""
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", str(odd_rows), "--ctx", "512", "--json"]) == 0
    data = json.loads(out.getvalue())
    assert data["kind"] == "HF folder" and data["type"] is None
    return {o["type"]: o for o in data["options"]}


def test_plan_accepts_an_hf_folder_and_lists_every_output_type(promised):
    assert set(promised) == set(OUTPUT_TYPES)
    assert all(not o["this_file"] and o["estimated"] for o in promised.values())


@pytest.mark.parametrize("qtype", OUTPUT_TYPES)
def test_plan_promises_the_bytes_quantize_writes(odd_rows, promised, tmp_path, qtype):
    from quantdesk.core.convert import open_source
    from quantdesk.core.quantize import FILE_TYPES

    from .conftest import imatrix_values, write_imatrix
    out = tmp_path / f"odd-{qtype}.gguf"
    extra = []
    if FILE_TYPES[qtype].needs_imatrix:    # planned as llama.cpp writes them: with an imatrix
        source = open_source(odd_rows)
        extra = ["--imatrix", str(write_imatrix(tmp_path / "im.gguf",
                                                imatrix_values(source.tensors)))]
        source.close()
    assert main(["quantize", str(odd_rows), "-t", qtype, "-o", str(out), "--backend", "cpu",
                 "--threads", "2", *extra]) == 0
    tensors = GGUFReader(out).tensors
    written = sum(int(t.data.nbytes) for t in tensors)
    assert written == sum(int(t.n_bytes) for t in tensors)
    assert promised[qtype]["size_bytes"] == written
    if qtype in ("Q2_K", "Q3_K_S", "Q4_K_M", "Q5_K_S", "Q6_K"):
        # rows of 320/864 cannot hold 256-weight blocks: llama.cpp's fallbacks were written
        kinds = {t.tensor_type.name for t in tensors}
        assert not kinds & {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}, kinds
