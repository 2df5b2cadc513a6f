"""Models other apps downloaded: LM Studio folders, Ollama manifests + blobs, user folders."""
from __future__ import annotations

import hashlib
import json

from quantdesk.core.hub.local_import import find_local_models, ollama_models


def _gguf(data: bytes = b"") -> bytes:
    return b"GGUF\x03\x00\x00\x00" + data


def test_lmstudio_ollama_and_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    home = tmp_path / "home"
    lm = home / ".lmstudio" / "models" / "lmstudio-community" / "Qwen-GGUF"
    lm.mkdir(parents=True)
    (lm / "Qwen-Q4_K_M.gguf").write_bytes(_gguf(b"x" * 10))
    (lm / "mmproj-Qwen-f16.gguf").write_bytes(_gguf())          # a vision projector, not a model
    (lm / "notes.gguf").write_bytes(b"not a gguf at all")         # wrong magic: skipped
    old = home / ".cache" / "lm-studio" / "models" / "a" / "b"
    old.mkdir(parents=True)
    for k in (1, 2):
        (old / f"Big-Q8_0-0000{k}-of-00002.gguf").write_bytes(_gguf(b"y" * 100))

    models = home / ".ollama" / "models"
    (models / "blobs").mkdir(parents=True)
    (models / "blobs" / "sha256-feed").write_bytes(b"{{ .Prompt }}")
    for i, rel in enumerate(("registry.ollama.ai/library/llama3.2/1b", "hf.co/bartowski/SmolLM2-GGUF/Q4_K_M")):
        weights = _gguf(b"z" * (50 + i))
        digest = hashlib.sha256(weights).hexdigest()
        (models / "blobs" / f"sha256-{digest}").write_bytes(weights)
        m = models / "manifests" / rel
        m.parent.mkdir(parents=True)
        m.write_text(json.dumps({"schemaVersion": 2, "layers": [
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:feed", "size": 13},
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}", "size": len(weights)}]}))
    (models / "manifests" / "registry.ollama.ai" / "library" / "broken").mkdir()
    (models / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest").write_text("{not json")

    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub" / "tiny.gguf").write_bytes(_gguf())

    found = {(m.source, m.name): m for m in find_local_models([mine], home=home)}
    assert set(found) == {("lmstudio", "lmstudio-community/Qwen-GGUF/Qwen-Q4_K_M"), ("lmstudio", "a/b/Big-Q8_0"),
                          ("ollama", "llama3.2:1b"), ("ollama", "hf.co/bartowski/SmolLM2-GGUF:Q4_K_M"),
                          ("folder", "sub/tiny")}
    big = found[("lmstudio", "a/b/Big-Q8_0")]
    assert big.parts == 2 and big.size_bytes == 2 * 108 and big.path.name.endswith("00001-of-00002.gguf")
    first = hashlib.sha256(_gguf(b"z" * 50)).hexdigest()
    assert found[("ollama", "llama3.2:1b")].path == models / "blobs" / f"sha256-{first}"


def test_ollama_models_env_override_and_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "nowhere"))
    assert ollama_models(home=tmp_path) == []
