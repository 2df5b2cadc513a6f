"""Chat with images evaluates the prompt the way llama.cpp's own multimodal path does: for each
vision family with an mmproj (tiny random checkpoints, converted by us), the host's first-token
log-probabilities after [text, image, text, image, text] equal those of libmtmd's
mtmd_helper_eval_chunks on the same prompt in a fresh context (tests/engine/mtmd_reference.py,
in a child process).

What this holds: positions (Qwen2-VL / Qwen2.5-VL use M-RoPE: an image's tokens take a 2-D grid
of positions and the text after it starts max(rows, columns) later, not n_tokens later),
Gemma 3's non-causal attention among an image's tokens, and Pixtral's [IMG_BREAK] rows and
Llama 4's tile tokens inside the image chunk. Tolerance 1e-4 on each of the top 5 logprobs: both
sides run the same llama.cpp kernels on the same positions (measured: identical, difference 0).
Wrong ways cost far more: images taking one position per token moved Qwen2.5-VL's by 3.5-4.6,
and Gemma 3's images decoded with causal attention by 4e-3 (checked below on every run)."""
from __future__ import annotations

import dataclasses
import re
from unittest.mock import ANY
from pathlib import Path

import numpy as np
import pytest

from quantdesk.core.engine import EngineClient
from quantdesk.core.engine.images import MEDIA_MARKER
from quantdesk.core.engine.types import SamplingParams, Token

from mtmd_reference import ReferenceRun
from tiny_vision_chat import png_bytes

TOL = 1e-4
TOP = 5
PROMPT = (f"Here is a picture: {MEDIA_MARKER}\nand another one:\n{MEDIA_MARKER}\n"
          f"What do they show? They show")


def _convert(folder: Path, out: Path) -> tuple[Path, Path]:
    from quantdesk.core.convert.mmproj import open_mmproj_source
    from quantdesk.core.quantize.writer import quantize_model
    text = quantize_model(folder, out / "text.gguf", "F16").path
    mmproj = quantize_model(open_mmproj_source(folder), out / "mmproj.gguf", "F16").path
    return Path(text), Path(mmproj)


def _gemma3(out: Path):
    from tiny_vision_chat import IMAGE_SIZE, build_gguf_pair
    return build_gguf_pair(out), (IMAGE_SIZE, IMAGE_SIZE)


def _qwenvl(arch: str):
    def build(out: Path):
        from tests.mmproj.tiny_qwenvl import build_qwenvl
        build_qwenvl(out / "hf", arch)
        return _convert(out / "hf", out), (140, 252)   # 5 x 9 merged tokens: 9 positions
    return build


def _qwen3vl(out: Path):
    from tests.mmproj.tiny_qwen3vl import build
    build(out / "hf")
    return _convert(out / "hf", out), (160, 288)       # 5 x 9 merged tokens: 9 positions


def _pixtral(out: Path):
    from tests.mmproj.tiny_pixtral import build_tiny_pixtral
    build_tiny_pixtral(out / "hf")
    return _convert(out / "hf", out), (24, 32)


def _llama4(out: Path):
    from tests.mmproj.tiny_llama4_vision import IMAGE, build_llama4_vision
    build_llama4_vision(out / "hf")
    return _convert(out / "hf", out), (IMAGE, IMAGE)


# Qwen2-VL's mmproj differs from Qwen2.5-VL's only inside the vision tower (tests/mmproj/
# test_qwenvl_mmproj.py); libmtmd decodes both with the same M-RoPE positions, so one of them
# stands for both here (measured equal to libmtmd for Qwen2-VL too when this file was written).
FAMILIES = {"gemma3": _gemma3, "qwen2.5vl": _qwenvl("Qwen2_5_VLForConditionalGeneration"),
            "qwen3vl": _qwen3vl, "pixtral": _pixtral, "llama4": _llama4}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    (text, mmproj), (h, w) = FAMILIES[request.param](out)
    images = []
    for seed in (1, 2):
        path = out / f"image{seed}.png"
        rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
        path.write_bytes(png_bytes(rgb))
        images.append(path)
    return request.param, text, mmproj, images


def _host_first_token(text, mmproj, images: list[Path]) -> tuple[list, object]:
    parts = [{"type": "image", "path": str(p)} for p in images]
    first, done = None, None
    with EngineClient() as client:
        client.load(text, mmproj=mmproj, n_threads=2, n_ctx=512)
        for event in client.generate([{"role": "user", "content": parts}],
                                     SamplingParams(temperature=0, max_tokens=1, logprobs=TOP),
                                     prompt=PROMPT):
            if isinstance(event, Token):
                first = first or event.logprobs[0]["top"]
            else:
                done = event
    return [(bytes(e["bytes"]), e["logprob"]) for e in first], done


@pytest.mark.slow
def test_first_token_logprobs_equal_libmtmds_own_evaluation(family, tmp_path):
    name, text, mmproj, images = family
    reference = ReferenceRun(text, mmproj, PROMPT, images, tmp_path, top=TOP)
    wrong = (ReferenceRun(text, mmproj, PROMPT, images, tmp_path, top=TOP, causal_images=True)
             if name == "gemma3" else None)
    got, done = _host_first_token(text, mmproj, images)
    ref = reference.result()
    if wrong is not None:   # the comparison sees Gemma 3's non-causal image attention
        off = [lp for _, lp in wrong.result()["top"]]
        assert np.abs(np.subtract(off, [lp for _, lp in ref["top"]])).max() > 10 * TOL
    want = [(bytes(b), lp) for b, lp in ref["top"]]
    assert [b for b, _ in got] == [b for b, _ in want], name
    assert np.allclose([lp for _, lp in got], [lp for _, lp in want], atol=TOL, rtol=0), (
        name, got, want)
    # the prompt's size is its tokens, each a KV cell; M-RoPE images take fewer positions
    assert done.prompt_tokens == ref["n_tokens"], name
    assert (ref["n_past"] < ref["n_tokens"]) == name.startswith("qwen"), name


# ---- M-RoPE: the KV cache fills by tokens, not positions ---------------------------------
@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    """Qwen2.5-VL and two 448x252 images: 16 x 9 = 144 tokens each, but 16 positions."""
    out = tmp_path_factory.mktemp("qwen-room")
    (text, mmproj), _ = FAMILIES["qwen2.5vl"](out)
    rgb = np.random.default_rng(3).integers(0, 256, (252, 448, 3), dtype=np.uint8)
    (out / "wide.png").write_bytes(png_bytes(rgb))
    return text, mmproj, out / "wide.png"


def _generate(client, image: Path, n_images: int, params: SamplingParams):
    parts = [{"type": "image", "path": str(image)}] * n_images
    prompt = "Look:" + MEDIA_MARKER * n_images + " It is"
    events = list(client.generate([{"role": "user", "content": parts}], params, prompt=prompt))
    return sum(isinstance(e, Token) for e in events), events[-1]


@pytest.mark.slow
def test_an_mrope_reply_ends_when_the_cache_is_full(qwen):
    """One image: 144 cells but 16 positions. The reply stops with "length" when the 256 cells
    are used (llama-cpp-python alone counts positions and decodes past the full cache: a failed
    llama_decode), also with prompt-lookup drafts near the end."""
    from quantdesk.core.engine.types import ContextOverflowError
    text, mmproj, image = qwen
    params = SamplingParams(temperature=0, max_tokens=400)
    with EngineClient() as client:
        client.load(text, mmproj=mmproj, n_threads=2, n_ctx=256)
        count, done = _generate(client, image, 1, params)
        assert done.finish_reason == "length" and done.image_tokens == 144
        assert done.prompt_tokens + count == 256 and count > 0   # every cell used, none past
        assert done.completion_tokens == count
        # two images: over 288 tokens in 32 + text positions, refused before any decode
        with pytest.raises(ContextOverflowError, match=r"^the conversation with its images "
                           r"\((\d+) tokens\) does not fit the context size \(256\)") as info:
            _generate(client, image, 2, params)
        assert int(re.search(r"\((\d+) tokens", str(info.value)).group(1)) > 2 * 144
    with EngineClient() as client:
        client.load(text, mmproj=mmproj, n_threads=2, n_ctx=256, prompt_lookup=3)
        # the same greedy reply, its tokens counted as they were (the draft that fills the
        # last cell is not one more)
        assert _generate(client, image, 1, params) == (count, dataclasses.replace(
            done, prompt_seconds=ANY, generation_seconds=ANY, tokens_per_second=ANY))
