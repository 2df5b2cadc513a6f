"""Chat with an image: a tiny random Gemma 3 and its mmproj (written by our converter) through the
engine host (libmtmd), the CLI, the ModelManager's projector finding, and the starter model,
which has no projector and refuses an image in one line. Server doors: tests/server/
test_image_api.py.

Random weights make the reply sensitive to the image, but the model's greedy choice is the
same token whatever the image (a "\\n" that dominates), so replies are compared under seeded
sampling (temperature 1, fixed seed: deterministic) and by the first token's log-probabilities."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from quantdesk.core.engine import EngineClient, EngineError
from quantdesk.core.engine.types import Done, InvalidRequestError, SamplingParams, Token

from tiny_vision_chat import IMAGE_TOKENS, build_gguf_pair, random_image

SEEDED = SamplingParams(temperature=1.0, seed=7, max_tokens=8, logprobs=3)
QUESTION = "Describe this"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vision")
    text, mmproj = build_gguf_pair(folder)
    (folder / "a.png").write_bytes(random_image(1))
    (folder / "b.png").write_bytes(random_image(2))
    return text, mmproj


@pytest.fixture(scope="module")
def engine(pair):
    text, mmproj = pair
    with EngineClient() as client:
        client.load(text, mmproj=mmproj, n_threads=2, n_ctx=512)
        yield client


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def with_image(*images, text: str = QUESTION) -> list[dict]:
    parts = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": data_url(png)}} for png in images]
    return [{"role": "user", "content": parts}]


def ask(client, messages, params: SamplingParams = SEEDED) -> tuple[str, list, Done]:
    text, first, done = "", None, None
    for event in client.generate(messages, params):
        if isinstance(event, Token):
            text += event.text
            if first is None and event.logprobs:
                first = [(e["token"], e["logprob"]) for e in event.logprobs[0]["top"]]
        else:
            done = event
    return text, first, done


def test_the_projector_is_loaded_and_an_image_takes_its_tokens(engine, pair):
    import llama_cpp
    assert engine.loaded.mmproj == str(pair[1])
    _, _, one = ask(engine, with_image(random_image(1)))
    _, _, two = ask(engine, with_image(random_image(1), random_image(2)))
    assert one.image_tokens == IMAGE_TOKENS and two.image_tokens == 2 * IMAGE_TOKENS
    # The second image adds its 4 tokens and the text between the two: Gemma 3's image end and
    # start markers, joined by the newline that separates content parts (as libmtmd writes it).
    vocab = llama_cpp.Llama(str(pair[0]), vocab_only=True, verbose=False)
    between = vocab.tokenize(b"<end_of_image>\n<start_of_image>", add_bos=False, special=True)
    assert two.prompt_tokens - one.prompt_tokens == IMAGE_TOKENS + len(between)


def test_the_reply_depends_on_the_image_and_only_on_it(engine):
    plain = ask(engine, [{"role": "user", "content": QUESTION}])
    a1 = ask(engine, with_image(random_image(1)))
    a2 = ask(engine, with_image(random_image(1)))
    b = ask(engine, with_image(random_image(2)))
    assert a1[:2] == a2[:2]                          # same image: same reply, same logprobs
    assert a1[0] != plain[0] and a1[0] != b[0]       # the image changes the reply ...
    assert a1[1] != plain[1] and a1[1] != b[1]       # ... and the first token's distribution
    # A text-only prompt after image prompts is answered as before them: image positions are
    # never taken for text when the host reuses the evaluated prefix.
    assert ask(engine, [{"role": "user", "content": QUESTION}])[:2] == plain[:2]


def test_every_image_form_gives_the_same_reply(engine, pair, tmp_path):
    png = random_image(1)
    path = tmp_path / "x.png"
    path.write_bytes(png)
    expected = ask(engine, with_image(png))[:2]
    for part in ({"type": "image", "path": str(path)}, {"type": "image", "data": png},
                 {"type": "image_url", "image_url": data_url(png)}):
        messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}, part]}]
        assert ask(engine, messages)[:2] == expected, part


@pytest.mark.parametrize("part, message", [
    ({"type": "image", "data": b"this is not an image"},
     "image 1 is not an image llama.cpp can read (use PNG or JPEG)"),
    ({"type": "image", "data": b"RIFF\x10\x00\x00\x00WEBPVP8 "},
     "image 1 is not an image llama.cpp can read (WebP is not supported: use PNG or JPEG)"),
    ({"type": "image", "path": "/no/such/picture.png"},
     "image 1: /no/such/picture.png: no such file"),
    ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
     "image 1: image URLs are not fetched (Quantdesk does not go online for a request); "
     "send the image as a data: URL"),
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}},
     "image 1: the data: URL's base64 is not valid"),
    ({"type": "image_url", "image_url": {"url": "/etc/hostname"}},
     "image 1: only data: URLs are read (data:image/png;base64,...)"),
])
def test_a_bad_image_is_refused_in_one_line_and_the_host_stays(engine, part, message):
    messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}, part]}]
    with pytest.raises(InvalidRequestError) as info:
        ask(engine, messages)
    assert str(info.value) == message
    assert ask(engine, with_image(random_image(1)))[2].image_tokens == IMAGE_TOKENS


def test_a_model_loaded_without_a_projector_refuses_an_image(starter_model):
    with EngineClient() as client:
        client.load(starter_model, n_threads=2, n_ctx=256)
        assert client.loaded.mmproj == ""
        with pytest.raises(InvalidRequestError) as info:
            ask(client, with_image(random_image(1)))
        assert str(info.value) == (
            "this model was loaded without a vision projector (mmproj), so it cannot read "
            "images; put its mmproj*.gguf beside the model file (or name it with --mmproj), "
            "or leave the image out")
        assert "\n" not in str(info.value)
        text, _, done = ask(client, [{"role": "user", "content": "Hi"}],
                            SamplingParams(temperature=0, max_tokens=2))
        assert done.completion_tokens > 0   # still serving text


def test_a_projector_that_does_not_fit_is_refused_before_loading(pair, starter_model):
    text, mmproj = pair
    with EngineClient() as client:
        with pytest.raises(EngineError) as info:
            client.load(starter_model, mmproj=mmproj, n_threads=2, n_ctx=256)
        assert str(info.value) == (f"{mmproj.name} does not fit {starter_model.name}: it "
                                   f"projects images to width 256, the model's embeddings "
                                   f"are 576 wide")
        with pytest.raises(EngineError, match=r"^tiny-gemma3-F16.gguf is not a vision "
                                              r"projector \(mmproj\)$"):
            client.load(text, mmproj=text, n_threads=2, n_ctx=256)
        assert client.host_pid is None   # refused before any process started


def test_the_host_checks_the_projector_width_itself(pair, starter_model, monkeypatch):
    """The host's own check, before libmtmd (which would only say it in the log)."""
    import multiprocessing as mp

    import llama_cpp.llama_chat_format as chat_format

    from quantdesk.core.engine.host import Host
    # Host.load replaces llama-cpp-python's template formatter for its process (a host is a
    # process of its own); here it runs inside pytest, so the original comes back afterwards
    monkeypatch.setattr(chat_format, "Jinja2ChatFormatter", chat_format.Jinja2ChatFormatter)
    commands, events = mp.Pipe(duplex=False)
    host = Host(commands, events)
    with pytest.raises(RuntimeError) as info:
        host.load(str(starter_model), n_gpu_layers=0, n_ctx=128, n_threads=1, mmproj=str(pair[1]))
    assert str(info.value) == (f"{pair[1].name} does not fit this model: it projects images "
                               f"to width 256, the model's embeddings are 576 wide")
    assert host.llm is None and host.projector is None   # nothing left loaded


def test_the_model_manager_finds_the_projector_beside_the_model(pair, starter_model, tmp_path):
    from quantdesk.core.runtime.models import LoadRequest
    text, mmproj = pair
    assert LoadRequest(text).mmproj == str(mmproj)                  # auto: beside it, fits
    assert LoadRequest(text, mmproj=None).mmproj is None            # none asked for
    assert LoadRequest(text, embedding=True).mmproj is None         # embeddings read no images
    assert LoadRequest(starter_model).mmproj is None                # nothing beside it
    # A projector beside a model it does not fit is not taken for it.
    shutil.copy(mmproj, tmp_path / "mmproj-other-F16.gguf")
    (tmp_path / "smol.gguf").symlink_to(starter_model)
    assert LoadRequest(tmp_path / "smol.gguf").mmproj is None
    with pytest.raises(ValueError, match="does not fit smol.gguf"):
        LoadRequest(tmp_path / "smol.gguf", mmproj=tmp_path / "mmproj-other-F16.gguf")


# ---- the CLI door ----------------------------------------------------------------------------
def cli(capsys, *args):
    from quantdesk.core.cli import main
    code = main(["chat", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_gives_the_engines_reply(engine, pair, capsys):
    text, mmproj = pair
    a = text.parent / "a.png"
    expected, _, done = ask(engine, with_image(a.read_bytes()),
                            SamplingParams(temperature=1.0, seed=7, max_tokens=8))
    code, out, err = cli(capsys, text, "--mmproj", mmproj, "--image", a, QUESTION,
                         "--temperature", 1, "--seed", 7, "--max-tokens", 8, "--threads", 2,
                         "--ctx", 512, "--json")
    assert code == 0, err
    reply = json.loads(out)
    assert reply["text"] == expected and reply["image_tokens"] == IMAGE_TOKENS
    assert reply["prompt_tokens"] == done.prompt_tokens and reply["mmproj"] == str(mmproj)
    # The projector beside the model is found without --mmproj.
    code, out, err = cli(capsys, text, "--image", a, QUESTION, "--temperature", 1, "--seed", 7,
                         "--max-tokens", 8, "--threads", 2, "--ctx", 512, "--json")
    assert code == 0 and json.loads(out)["text"] == expected


def test_the_cli_refuses_in_one_line(pair, starter_model, capsys):
    text, mmproj = pair
    a = text.parent / "a.png"
    cases = [
        ((text, "--image", text.parent / "missing.png", QUESTION),
         "quantdesk: image 1: " + str(text.parent / "missing.png") + ": no such file\n"),
        ((text, "--mmproj", "none", "--image", a, QUESTION),
         "quantdesk: --image needs a vision projector, and --mmproj is none\n"),
        ((starter_model, "--image", a, QUESTION),
         f"quantdesk: {starter_model.name} has no vision projector: give one with --mmproj "
         f"FILE (an mmproj*.gguf made for this model)\n"),
        ((starter_model, "--mmproj", mmproj, "--image", a, QUESTION),
         f"quantdesk: {mmproj.name} does not fit {starter_model.name}: it projects images to "
         f"width 256, the model's embeddings are 576 wide\n"),
    ]
    for args, message in cases:
        code, out, err = cli(capsys, *args)
        assert (code, out, err) == (2, "", message), args
    code, out, err = cli(capsys, text, "--image", text, QUESTION, "--max-tokens", 2,
                         "--threads", 2, "--ctx", 512)
    assert code == 1 and err == "quantdesk: image 1 is not an image llama.cpp can read " \
                                "(use PNG or JPEG)\n"


def test_prompt_lookup_never_drafts_an_image_position(pair):
    import numpy as np

    from quantdesk.core.engine.vision import NOT_TEXT, TextOnlyDraft
    after_image = TextOnlyDraft(lambda ids: np.array([5, 6, NOT_TEXT, NOT_TEXT, 7]))
    assert after_image(np.array([1, 2])).tolist() == [5, 6]
    assert TextOnlyDraft(lambda ids: np.array([5, 6]))(np.array([1])).tolist() == [5, 6]
    text, mmproj = pair
    # The same image with prompt lookup on: the reply is the one without it (greedy).
    greedy = SamplingParams(temperature=0, max_tokens=8)
    replies = []
    for lookup in (0, 3):
        with EngineClient() as client:
            client.load(text, mmproj=mmproj, n_threads=2, n_ctx=512, prompt_lookup=lookup)
            replies.append(ask(client, with_image(random_image(1)), greedy)[0])
    assert replies[0] == replies[1]
