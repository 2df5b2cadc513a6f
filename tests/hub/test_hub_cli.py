"""The hub CLI in a child process, pointed at the fake hub through the environment only."""
from __future__ import annotations

import json
import subprocess
import sys

from .conftest import GATED_REPO, GGUF_REPO, subprocess_env


def _run(hub_env, *args, extra_env=None):
    env = subprocess_env(hub_env)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "quantdesk.core.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_search_files_and_pull(hub_env, fakehub, gguf_files):
    r = _run(hub_env, "hub", "search", "llama", "--limit", "2", "--sort", "downloads", "--json")
    assert r.returncode == 0, r.stderr
    assert [x["repo_id"] for x in json.loads(r.stdout)] == [GGUF_REPO, GATED_REPO]

    r = _run(hub_env, "hub", "files", GGUF_REPO, "--ctx", "1024", "--json")
    assert r.returncode == 0, r.stderr
    variants = {v["quant"]: v for v in json.loads(r.stdout)["variants"]}
    assert set(variants) == {"Q4_K_M", "Q8_0", "F16"}
    f16 = variants["F16"]
    assert f16["files"] == ["tiny-llama-F16-00001-of-00002.gguf", "tiny-llama-F16-00002-of-00002.gguf"]
    assert f16["size_bytes"] == sum(len(gguf_files[f]) for f in f16["files"])
    assert all(v["fit"] in ("full-gpu", "partial", "cpu", "no-fit") for v in variants.values())
    assert variants["Q4_K_M"]["plan"]["n_ctx_requested"] == 1024

    r = _run(hub_env, "pull", GGUF_REPO, "--quant", "f16", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["variant"] == "F16" and len(out["files"]) == 2
    for path, name in zip(out["files"], f16["files"]):
        assert open(path, "rb").read() == gguf_files[name] and f"/snapshots/{fakehub.repos[GGUF_REPO].sha}/" in path
    assert "done" in r.stderr


def test_cli_pull_needs_a_choice_and_explains_gated_and_offline(hub_env, fakehub):
    r = _run(hub_env, "pull", GGUF_REPO)
    assert r.returncode == 2 and "--quant" in r.stderr and "Q4_K_M" in r.stderr

    r = _run(hub_env, "pull", GATED_REPO, "--quant", "Q8_0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "gated" in r.stderr and "quantdesk hub login" in r.stderr

    fakehub.tokens.add("hf_letmein")
    r = subprocess.run([sys.executable, "-m", "quantdesk.core.cli", "hub", "login"], input="hf_letmein\n",
                       env=subprocess_env(hub_env), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "tester" in r.stdout, r.stderr
    r = _run(hub_env, "pull", GATED_REPO, "--quant", "Q8_0", "--json")
    assert r.returncode == 0, r.stderr

    before = len(fakehub.requests)
    r = _run(hub_env, "hub", "search", "llama", extra_env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and "offline" in r.stderr and len(fakehub.requests) == before


def test_cli_lists_models_other_apps_downloaded(hub_env, tmp_path):
    home = tmp_path / "home"
    lm = home / ".lmstudio" / "models" / "pub" / "repo"
    lm.mkdir(parents=True)
    (lm / "m-Q4_K_M.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "x.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    r = _run(hub_env, "hub", "local", "--folder", str(extra), "--json", extra_env={"HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert {(m["source"], m["name"]) for m in json.loads(r.stdout)} == {("lmstudio", "pub/repo/m-Q4_K_M"), ("folder", "x")}


def test_cli_files_says_whether_a_safetensors_repo_converts(hub_env, fakehub):
    from .conftest import LLAMA_CONFIG, ST_REPO
    fakehub.add_repo("odd-org/Rwkv-Thing", {"config.json": json.dumps(
        {**LLAMA_CONFIG, "architectures": ["RwkvForCausalLM"]}).encode(), "model.safetensors": b"\0" * 64},
        tags=["safetensors"])
    r = _run(hub_env, "hub", "files", ST_REPO, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["convertible"] == {"ok": True, "reason": None, "architecture": "LlamaForCausalLM",
                                                  "vision_projector": False}
    r = _run(hub_env, "hub", "files", "odd-org/Rwkv-Thing")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("  cannot convert: unsupported architecture RwkvForCausalLM (supported: ")
