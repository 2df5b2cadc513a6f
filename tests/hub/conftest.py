"""Fixtures: real small GGUF files served by a local fake hub, and the environment that points
huggingface_hub at it (HF_ENDPOINT, a private cache and token file, offline mode off)."""
from __future__ import annotations

import json
import os

import pytest

from .fakehub import FakeHub
from .ggufs import write_model

GGUF_REPO = "test-org/Tiny-Llama-GGUF"
GATED_REPO = "gated-org/Secret-Llama-GGUF"
ST_REPO = "test-org/Tiny-Llama"
# Llama-3.2-1B's config.json (the fields the planner reads).
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
                "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
                "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
                "max_position_embeddings": 131072, "tie_word_embeddings": True, "torch_dtype": "bfloat16"}


@pytest.fixture(scope="session")
def gguf_files(tmp_path_factory) -> dict[str, bytes]:
    """Repo file name -> bytes: Q4_K_M and Q8_0 single files, F16 split in two parts."""
    root = tmp_path_factory.mktemp("ggufs")
    files: dict[str, bytes] = {}
    for quant in ("Q4_K_M", "Q8_0"):
        (path,) = write_model(root / f"tiny-llama.{quant}.gguf", quant)
        files[path.name] = path.read_bytes()
    for part in write_model(root / "tiny-llama-F16.gguf", "F16", split_max_tensors=20):
        files[part.name] = part.read_bytes()
    return files


@pytest.fixture
def fakehub(gguf_files):
    hub = FakeHub(page_size=3)
    gguf_meta = {"total": 5_000_000, "architecture": "llama", "context_length": 4096}
    hub.add_repo(GGUF_REPO, {"README.md": b"# Tiny Llama\n\nA **test** model.\n", **gguf_files,
                             "mmproj-tiny-f16.gguf": gguf_files["tiny-llama.Q8_0.gguf"][:4096]},
                 tags=["gguf", "llama"], downloads=500, likes=50, gguf=gguf_meta)
    hub.add_repo(GATED_REPO, {"README.md": b"# gated\n", "secret.Q8_0.gguf": gguf_files["tiny-llama.Q8_0.gguf"]},
                 tags=["gguf"], gated=True, downloads=400, likes=40, gguf=gguf_meta)
    hub.add_repo(ST_REPO, {"README.md": b"# st\n", "config.json": json.dumps(LLAMA_CONFIG).encode(),
                           "model.safetensors": b"\0" * 2048},
                 tags=["safetensors", "transformers"], downloads=300, likes=30,
                 safetensors={"parameters": {"BF16": 1_235_814_400}, "total": 1_235_814_400})
    for i in range(7):
        hub.add_repo(f"filler/llama-{i}-GGUF", {"m.Q4_0.gguf": b"GGUF"}, tags=["gguf"], downloads=i, likes=i)
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_env(fakehub, tmp_path, monkeypatch):
    """Point huggingface_hub (and us) at the fake hub with a private cache and token file."""
    hf_home = tmp_path / "hf"
    env = {"HF_ENDPOINT": fakehub.url, "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"),
           "HF_TOKEN_PATH": str(hf_home / "token"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "QUANTDESK_HOME": str(tmp_path / "qd"), "HF_HUB_OFFLINE": "0", "HOME": str(tmp_path / "home")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    # huggingface_hub read these at import time; keep its own view consistent for this test.
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", env["HF_TOKEN_PATH"])
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", env["HF_HUB_CACHE"])
    return env


def subprocess_env(hub_env: dict) -> dict:
    """os.environ plus the fake-hub settings, for CLI runs in a child process."""
    env = dict(os.environ)
    env.update(hub_env)
    return env
