"""Quant variants from a repo's file list, and remote headers read from a prefix only."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantdesk.core import hub
from quantdesk.core.gguf import ArrayInfo
from quantdesk.core.gguf.header import STRING
from quantdesk.core.hub.remote_gguf import read_remote_header
from quantdesk.core.hub.variants import RepoFile, group_variants

from .conftest import GATED_REPO, GGUF_REPO, ST_REPO
from .ggufs import parameter_count


@pytest.mark.parametrize("name, quant", [
    ("Llama-3-8B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
    ("llama-3-8b-instruct.q8_0.gguf", "Q8_0"),
    ("Qwen2.5-7B-Instruct-IQ3_XXS.gguf", "IQ3_XXS"),
    ("gemma-3-27b-it-UD-Q4_K_XL-00001-of-00002.gguf", "UD-Q4_K_XL"),
    ("Q4_K_M/model-Q4_K_M-00002-of-00003.gguf", "Q4_K_M"),
    ("model-bf16.gguf", "BF16"),
    ("phi-fp16.gguf", "F16"),
    ("Q2-model-notaquant.gguf", None),
])
def test_parse_quant_from_file_names(name, quant):
    assert hub.parse_quant(name) == quant


def test_split_files_group_into_one_variant_with_summed_size():
    files = [RepoFile("m-Q8_0-00002-of-00002.gguf", 30, None), RepoFile("m-Q8_0-00001-of-00002.gguf", 70, None),
             RepoFile("m-Q4_K_M.gguf", 60, None), RepoFile("README.md", 1, None),
             RepoFile("mmproj-m-f16.gguf", 5, None)]
    variants, mmproj = group_variants(files, parameters=100)
    assert [(v.quant, [f.name for f in v.files], v.size_bytes) for v in variants] == [
        ("Q4_K_M", ["m-Q4_K_M.gguf"], 60),
        ("Q8_0", ["m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf"], 100)]
    assert variants[1].bits_per_weight == 8.0
    assert [f.name for f in mmproj] == ["mmproj-m-f16.gguf"]


def test_repo_details_from_model_info(hub_env, fakehub, gguf_files):
    details = hub.repo_details(GGUF_REPO)
    assert details.kind == "gguf" and details.license == "apache-2.0" and not details.gated
    by_quant = {v.quant: v for v in details.variants}
    assert set(by_quant) == {"Q4_K_M", "Q8_0", "F16"}
    f16 = by_quant["F16"]
    assert [f.name for f in f16.files] == ["tiny-llama-F16-00001-of-00002.gguf", "tiny-llama-F16-00002-of-00002.gguf"]
    assert f16.size_bytes == sum(len(gguf_files[f.name]) for f in f16.files)
    import hashlib
    q8 = by_quant["Q8_0"].files[0]
    assert q8.sha256 == hashlib.sha256(gguf_files[q8.name]).hexdigest()
    assert [f.name for f in details.mmproj] == ["mmproj-tiny-f16.gguf"]
    assert hub.repo_details(GATED_REPO).gated
    st = hub.repo_details(ST_REPO)
    assert (st.kind, st.safetensors_dtype, st.safetensors_bytes, st.variants) == ("safetensors", "BF16", 2048, [])


def test_remote_header_reads_only_a_prefix(hub_env, fakehub, gguf_files):
    name = "tiny-llama.Q4_K_M.gguf"
    size = len(gguf_files[name])
    head = read_remote_header(GGUF_REPO, name, first_bytes=64 * 1024)
    from gguf import GGUFReader
    import tempfile, os
    with tempfile.NamedTemporaryFile(suffix=".gguf", delete=False) as tmp:
        tmp.write(gguf_files[name])
    try:
        full = GGUFReader(tmp.name)
        # the same facts as gguf-py reading the whole file
        assert [(t.name, t.tensor_type.name, int(t.n_bytes)) for t in full.tensors] == [
            (t.name, t.type_name, t.n_bytes) for t in head.tensors]
        assert head.data_offset == full.data_offset
        del full
    finally:
        os.unlink(tmp.name)
    assert head.architecture == "llama" and head.file_type == "Q4_K_M"
    assert head.parameters == parameter_count()
    assert head.metadata["tokenizer.ggml.tokens"] == ArrayInfo(STRING, 12000) and head.chat_template
    assert head.file_size == size
    # the header (~300 KB) needed several growing range requests, all ending far before the data
    ranges = [r for _, _, r in fakehub.resolve_requests(name)]
    assert len(ranges) >= 2 and all(r and r.startswith("bytes=") for r in ranges)
    ends = [int(r.split("-")[1]) for r in ranges]
    assert max(ends) < 4 * head.data_offset and head.bytes_fetched < size / 2


def test_variant_headers_and_fit_badges(hub_env, fakehub, gguf_files, monkeypatch):
    """The planner gets the header of the variant (all split parts); its verdict becomes the badge."""
    from quantdesk.core import planner
    from quantdesk.core.hardware import detect
    seen = []
    real = planner.plan_for_model

    def spy(profile, **kw):  # the real planner, noting what it was given
        seen.append((profile, kw["n_ctx"]))
        return real(profile, **kw)
    monkeypatch.setattr(planner, "plan_for_model", spy)
    hw = detect()

    details = hub.repo_details(GGUF_REPO)
    for v in details.variants:
        hub.read_variant_header(GGUF_REPO, v)
        hub.fit_variant(v, n_ctx=2048, hardware=hw, vram=8 << 30, ram=64 << 30)
    by_quant = {v.quant: v for v in details.variants}
    for (profile, _), v in zip(seen, details.variants):
        assert v.confirmed is True and v.file_type == v.quant
        want = real(profile, n_ctx=2048, hardware=hw, vram=8 << 30, ram=64 << 30).to_json()
        assert v.fit == want and v.fit["type"] == v.quant and v.fit["fit"] == "full-gpu"
        assert v.fit["size_bytes"] == v.remote.tensor_bytes == profile.size_bytes
        assert profile.parameters == parameter_count()
    # split variant: both parts' tensor tables were merged before planning
    f16 = next(p for p, _ in seen if p.file_type == "F16")
    assert by_quant["F16"].header["parts"] == 2 and by_quant["F16"].header["tensor_count"] == len(f16.tensors)
    assert by_quant["F16"].bits_per_weight == pytest.approx(16, rel=0.01)
    assert 4.5 < by_quant["Q4_K_M"].bits_per_weight < 5.5 and by_quant["Q8_0"].bits_per_weight == pytest.approx(8.5, rel=0.01)
    assert len(seen) == len(details.variants) and all(n_ctx == 2048 for _, n_ctx in seen)
    # only prefixes were fetched: every request had a Range, ending well before the file's end
    for v in details.variants:
        for f in v.files:
            ranges = [rng for _, _, rng in fakehub.resolve_requests(f.name)]
            assert ranges and all(rng and int(rng.split("-")[1]) < f.size // 2 for rng in ranges), (f.name, ranges)
    fetched = sum(v.header["bytes_fetched"] for v in details.variants)
    assert fetched < sum(v.size_bytes for v in details.variants) / 4


def test_fit_badges_from_the_real_planner(hub_env, fakehub):
    details = hub.repo_details(GGUF_REPO)
    q4 = next(v for v in details.variants if v.quant == "Q4_K_M")
    hub.read_variant_header(GGUF_REPO, q4)
    roomy = hub.fit_variant(q4, n_ctx=2048, vram=0, ram=64 << 30).fit
    assert roomy["fit"] == "cpu" and roomy["type"] == "Q4_K_M" and roomy["gpu_layers"] == 0
    # the planner priced the variant from the remote header: its weight bytes are the tensor table's
    assert roomy["size_bytes"] == pytest.approx(q4.remote.tensor_bytes, rel=0.02)
    gpu = hub.fit_variant(q4, n_ctx=2048, vram=8 << 30, ram=64 << 30).fit
    assert gpu["fit"] == "full-gpu" and gpu["gpu_layers"] >= 4
    assert hub.fit_variant(q4, n_ctx=2048, vram=0, ram=1 << 20).fit["fit"] == "no-fit"


def test_safetensors_repo_gets_a_recommended_quant(hub_env, fakehub):
    from quantdesk.core.hub.fit import recommend_for_safetensors
    details = hub.repo_details(ST_REPO)
    rows, best, note = recommend_for_safetensors(details, n_ctx=2048)
    assert note is None and rows and best is not None
    assert best["type"] in {r["type"] for r in rows} and best["fit"] != "no-fit"


def test_model_card_without_front_matter(hub_env, fakehub):
    from quantdesk.core.hub.card import model_card
    fakehub.repos[GGUF_REPO].files["README.md"] = b"---\nlicense: mit\ntags: [x]\n---\n# Tiny\n\nBody **bold**.\n"
    assert model_card(GGUF_REPO) == "# Tiny\n\nBody **bold**.\n"
    fakehub.repos[ST_REPO].files.pop("README.md")
    assert model_card(ST_REPO) == ""


@pytest.mark.parametrize("name, header_type, confirmed", [
    ("m-Q4_K_M.gguf", "Q4_K_M", True), ("m-UD-Q4_K_XL.gguf", "Q4_K_M", True),
    ("m-Q4_K_M.gguf", "Q4_0", False), ("m-Q8_0.gguf", "Q4_K_S", False), ("m-F16.gguf", "F16", True)])
def test_header_confirms_or_contradicts_the_file_name(name, header_type, confirmed, monkeypatch):
    from gguf import LlamaFileType
    import quantdesk.core.hub.remote_gguf as remote_gguf
    from quantdesk.core.hub.remote_gguf import RemoteGGUF
    ftype = int(LlamaFileType["MOSTLY_" + header_type])
    header = RemoteGGUF("url", 10, 10, 0, {"general.architecture": "llama", "general.file_type": ftype}, [])
    monkeypatch.setattr(remote_gguf, "read_remote_header", lambda *a, **k: header)
    (v,), _ = group_variants([RepoFile(name, 10, None)])
    hub.read_variant_header("org/repo", v)
    assert v.file_type == header_type and v.confirmed is confirmed


def test_parameters_from_safetensors_headers_when_the_hub_has_no_count(hub_env, fakehub):
    """No `safetensors` block in the model info: the count comes from each shard's header
    (Range requests only; nothing is downloaded into the cache)."""
    from .fakehub import safetensors_bytes
    from quantdesk.core.hub import repo_details
    shard1 = safetensors_bytes({"embed": ("BF16", [100, 64]), "norm": ("F32", [64])})
    shard2 = safetensors_bytes({"lm_head": ("BF16", [100, 64])})
    index = {"metadata": {"total_size": 2 * 100 * 64 * 2 + 64 * 4},
             "weight_map": {"embed": "model-00001-of-00002.safetensors",
                            "norm": "model-00001-of-00002.safetensors",
                            "lm_head": "model-00002-of-00002.safetensors"}}
    fakehub.add_repo("plain-org/Bare", {"config.json": b"{}",
                                        "model.safetensors.index.json": json.dumps(index).encode(),
                                        "model-00001-of-00002.safetensors": shard1,
                                        "model-00002-of-00002.safetensors": shard2},
                     tags=["transformers"], safetensors=None)
    details = repo_details("plain-org/Bare")
    assert details.parameters == 2 * 100 * 64 + 64
    assert details.safetensors_dtype == "BF16" and details.kind == "safetensors"
    ranged = [r for r in fakehub.requests if r[0] == "GET" and ".safetensors" in r[1]]
    assert len(ranged) == 2 and all(r[2] and r[2].startswith("bytes=0-") for r in ranged)
    assert not list(Path(hub_env["HF_HUB_CACHE"]).rglob("*.safetensors"))


@pytest.mark.parametrize("card, licence", [
    ("---\nlicense: mit\n---\n# x\n", "mit"),
    ("---\nlicense: 'apache-2.0'\nlanguage: en\n---\n", "apache-2.0"),
    ("---\nlicense:\n  - llama3\n  - mit\n---\n", "llama3"),
    ("---\nlicense: other\nlicense_name: qwen-research\n---\n", "qwen-research"),
    ("# no front matter\nlicense: mit\n", None),
])
def test_licence_from_the_card_front_matter(card, licence):
    from quantdesk.core.hub.card import card_license
    assert card_license(card) == licence


def test_read_card_gives_text_and_licence(hub_env, fakehub):
    from .fakehub import front_matter_card
    from quantdesk.core.hub.card import read_card
    fakehub.add_repo("plain-org/Card", {"README.md": front_matter_card("# Hi\n", license="mit")},
                     license="mit", license_in_api=False)
    assert read_card("plain-org/Card") == ("# Hi\n", "mit")
