"""Images through the API server: OpenAI image_url parts (data: URLs) and Anthropic base64 image
blocks reach the tiny random Gemma 3 with the projector beside it in the library, and the reply
is the engine's own for the same image; an http(s) URL, a bad image and a model without a
projector are 400s with one line."""
from __future__ import annotations

import base64
import json
import shutil

import pytest

from quantdesk.core.engine import EngineClient
from quantdesk.core.engine.types import SamplingParams, Token
from tests.engine.tiny_vision_chat import build_gguf_pair, random_image

from .server_process import STARTER_ID, Server

pytestmark = pytest.mark.slow
MODEL = "tiny-gemma3-F16"
QUESTION = "Describe this"
PNG = random_image(1)
URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


@pytest.fixture(scope="module")
def vision_server(tmp_path_factory, starter_model):
    home = tmp_path_factory.mktemp("vision-serve")
    models = home / "models"
    models.mkdir()
    text, mmproj = build_gguf_pair(models)
    shutil.rmtree(models / "hf")
    shutil.copy(starter_model, models / f"{STARTER_ID}.gguf")
    srv = Server(home, "--ctx", "512", "--ttl", "0")
    yield srv, text, mmproj
    srv.stop()


def post(srv, path: str, body: dict):
    return srv.request(path, json.dumps(body).encode(), {"content-type": "application/json"})


def openai_body(content, model: str = MODEL) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}],
            "temperature": 1.0, "seed": 7, "max_tokens": 8}


def test_an_image_gets_the_engines_reply_through_both_apis(vision_server):
    srv, text, mmproj = vision_server
    expected = ""
    with EngineClient() as client:
        client.load(text, mmproj=mmproj, n_threads=2, n_ctx=512)
        messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION},
                                                 {"type": "image", "data": PNG}]}]
        for event in client.generate(messages, SamplingParams(temperature=1.0, seed=7,
                                                              max_tokens=8)):
            expected += event.text if isinstance(event, Token) else ""
    status, reply = post(srv, "/v1/chat/completions", openai_body(
        [{"type": "text", "text": QUESTION}, {"type": "image_url", "image_url": {"url": URL}}]))
    assert status == 200, reply
    assert reply["choices"][0]["message"]["content"] == expected
    status, plain = post(srv, "/v1/chat/completions", openai_body(QUESTION))
    assert status == 200 and plain["usage"]["prompt_tokens"] < reply["usage"]["prompt_tokens"]
    status, reply = post(srv, "/v1/messages", {
        "model": MODEL, "max_tokens": 8, "temperature": 1.0, "seed": 7,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": QUESTION},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(PNG).decode()}}]}]})
    assert status == 200, reply
    assert reply["content"][0]["text"] == expected


@pytest.mark.parametrize("part, model, message", [
    ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}, MODEL,
     "image 1: image URLs are not fetched (Quantdesk does not go online for a request); "
     "send the image as a data: URL"),
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                                + base64.b64encode(b"not a picture").decode()}},
     MODEL, "image 1 is not an image llama.cpp can read (use PNG or JPEG)"),
    ({"type": "image_url", "image_url": {"url": URL}}, STARTER_ID,
     "this model was loaded without a vision projector (mmproj), so it cannot read images; "
     "put its mmproj*.gguf beside the model file (or name it with --mmproj), "
     "or leave the image out"),
])
def test_refusals_are_400s_with_one_line(vision_server, part, model, message):
    srv = vision_server[0]
    status, reply = post(srv, "/v1/chat/completions", openai_body(
        [{"type": "text", "text": QUESTION}, part], model=model))
    assert status == 400 and reply["error"]["message"] == message


def test_an_anthropic_url_image_source_is_refused(vision_server):
    status, reply = post(vision_server[0], "/v1/messages", {
        "model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]})
    assert status == 400
    assert reply["error"]["message"] == ("messages.0.content.0: only base64 image sources are "
                                         "read (Quantdesk does not go online for a request)")
