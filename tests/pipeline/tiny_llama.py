"""A tiny Llama checkpoint in Hugging Face form, built by the tests: random weights (dims multiples
of 256 unless asked otherwise), a byte-level BPE tokenizer trained here with `tokenizers`, and a
numpy forward pass of the same weights to check what llama.cpp computes from our GGUF.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
_CORPUS = ["The capital of France is Paris.", "Quantized models run on small machines.",
           "A llama walks into a bar and orders a tensor.", "one two three four five six seven",
           "What is the capital of France? Answer in one sentence."] * 20


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str) -> None:
    """The documented layout: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        kind = "U8" if arr.dtype == np.uint8 else dtype   # packed blocks (gpt-oss MXFP4) as stored
        if kind == "U8":
            data = arr.tobytes()
        elif dtype == "BF16":
            data = to_bf16_bits(arr).tobytes()
        else:
            data = arr.astype({"F32": np.float32, "F16": np.float16}[dtype]).tobytes()
        header[name] = {"dtype": kind, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for b in blobs:
            f.write(b)


class RandomWeights:
    """Seeded tiny weights: matrices around 0 (`mat`), norm gains around 1 (`vec`)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def mat(self, *shape, scale=0.05) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def vec(self, n: int) -> np.ndarray:
        return (1 + 0.1 * self.rng.standard_normal(n)).astype(np.float32)

    def lm(self, vocab: int, n_embd: int, prefix: str = "model.", head: str = "lm_head.weight") -> dict:
        """Embeddings, final norm and an untied output head."""
        return {prefix + "embed_tokens.weight": self.mat(vocab, n_embd, scale=0.5),
                prefix + "norm.weight": self.vec(n_embd), head: self.mat(vocab, n_embd, scale=0.2)}


def stored_values(arr: np.ndarray, dtype: str) -> np.ndarray:
    """What a weight reads back as after storage in `dtype` (the numpy pass uses these)."""
    if dtype == "BF16":
        return (to_bf16_bits(arr).astype(np.uint32) << 16).view(np.float32)
    if dtype == "F16":
        return arr.astype(np.float16).astype(np.float32)
    return arr.astype(np.float32)


def train_tokenizer(folder: Path, vocab_size: int, extra_special: tuple[str, ...] = ()) -> dict[str, int]:
    """A byte-level BPE tokenizer.json (+ tokenizer_config.json with the chat template) trained on
    the corpus; `extra_special` tokens follow the three ChatML ones. Returns their ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                                  *extra_special],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS, trainer)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": False,
        "chat_template": CHAT_TEMPLATE, "tokenizer_class": "PreTrainedTokenizerFast"}))
    return {t: tok.token_to_id(t) for t in extra_special}


def train_sentencepiece(folder: Path, vocab_size: int) -> None:
    """A SentencePiece BPE model with byte fallback (the Llama 2 / TinyLlama / Mistral kind)."""
    import io

    import sentencepiece as spm
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_CORPUS), model_writer=buf,
                                   vocab_size=vocab_size, model_type="bpe", byte_fallback=True,
                                   character_coverage=1.0, hard_vocab_limit=False,
                                   unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    (folder / "tokenizer.model").write_bytes(buf.getvalue())
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "add_eos_token": False}))


def copy_tokenizer(source: Path, folder: Path) -> None:
    """A real tokenizer (tokenizer.json and its tokenizer_config.json) into `folder`."""
    import shutil
    for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"):
        if (source / name).is_file():
            shutil.copyfile(source / name, folder / name)


def build_tiny_llama(folder: Path, *, n_layer: int = 4, n_embd: int = 256, n_ff: int = 512,
                     n_head: int = 4, n_head_kv: int = 2, vocab: int = 384, tied: bool = False,
                     dtype: str = "BF16", shards: int = 1, seed: int = 0,
                     arch: str = "LlamaForCausalLM", tokenizer: str | Path = "bpe") -> dict[str, np.ndarray]:
    """Write config, tokenizer and safetensors to `folder`; returns the weights as stored.
    `tokenizer`: "bpe" or "spm" (trained here) or a folder whose tokenizer files are copied."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    hd = n_embd // n_head

    def mat(rows, cols, scale=0.05):
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    w = {"model.embed_tokens.weight": mat(vocab, n_embd, 0.5),
         "model.norm.weight": (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32)
        w[p + "post_attention_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32)
        w[p + "self_attn.q_proj.weight"] = mat(n_head * hd, n_embd, 0.2)
        w[p + "self_attn.k_proj.weight"] = mat(n_head_kv * hd, n_embd, 0.2)
        w[p + "self_attn.v_proj.weight"] = mat(n_head_kv * hd, n_embd)
        w[p + "self_attn.o_proj.weight"] = mat(n_embd, n_head * hd)
        w[p + "mlp.gate_proj.weight"] = mat(n_ff, n_embd)
        w[p + "mlp.up_proj.weight"] = mat(n_ff, n_embd)
        w[p + "mlp.down_proj.weight"] = mat(n_embd, n_ff)
        if arch == "Qwen2ForCausalLM":  # q/k/v carry biases
            for k, rows in (("q", n_head * hd), ("k", n_head_kv * hd), ("v", n_head_kv * hd)):
                w[p + f"self_attn.{k}_proj.bias"] = (0.1 * rng.standard_normal(rows)).astype(np.float32)
        if arch == "Qwen3ForCausalLM":  # per-head RMSNorm of q and k
            w[p + "self_attn.q_norm.weight"] = (1 + 0.1 * rng.standard_normal(hd)).astype(np.float32)
            w[p + "self_attn.k_norm.weight"] = (1 + 0.1 * rng.standard_normal(hd)).astype(np.float32)
    if not tied:
        w["lm_head.weight"] = mat(vocab, n_embd, 0.2)
    names = list(w)
    groups = [names[i::shards] for i in range(shards)]
    if shards == 1:
        write_safetensors(folder / "model.safetensors", w, dtype)
    else:
        weight_map = {}
        for k, group in enumerate(groups, 1):
            fname = f"model-{k:05d}-of-{shards:05d}.safetensors"
            write_safetensors(folder / fname, {n: w[n] for n in group}, dtype)
            weight_map.update({n: fname for n in group})
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}))
    model_type = {"Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3",
                  "MistralForCausalLM": "mistral"}.get(arch, "llama")
    (folder / "config.json").write_text(json.dumps({
        "architectures": [arch], "model_type": model_type, "hidden_size": n_embd, "head_dim": hd,
        "intermediate_size": n_ff, "num_hidden_layers": n_layer, "num_attention_heads": n_head,
        "num_key_value_heads": n_head_kv, "vocab_size": vocab, "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tied,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}))
    if isinstance(tokenizer, Path):
        copy_tokenizer(tokenizer, folder)
    elif tokenizer == "spm":
        train_sentencepiece(folder, vocab)
    else:
        train_tokenizer(folder, vocab)
    return {k: stored_values(v, dtype) for k, v in w.items()}


def numpy_forward(w: dict[str, np.ndarray], tokens: list[int], *, n_layer: int, n_head: int,
                  n_head_kv: int, eps: float = 1e-5, theta: float = 10000.0) -> np.ndarray:
    """Logits (n_tokens, vocab) of the HF Llama computation, in float64."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    x = w["model.embed_tokens.weight"][tokens]
    n, d = x.shape
    hd = d // n_head
    inv = theta ** (-np.arange(0, hd, 2) / hd)
    ang = np.outer(np.arange(n), inv)
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))

    def norm(v, g):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * g

    def rope(v):  # (heads, n, hd), HF rotate_half convention
        rot = np.concatenate([-v[..., hd // 2:], v[..., : hd // 2]], -1)
        return v * cos + rot * sin

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(n_layer):
        p = f"model.layers.{i}."
        h = norm(x, w[p + "input_layernorm.weight"])
        proj = {}
        for name, heads in (("q", n_head), ("k", n_head_kv), ("v", n_head_kv)):
            y = h @ w[p + f"self_attn.{name}_proj.weight"].T + w.get(p + f"self_attn.{name}_proj.bias", 0)
            proj[name] = y.reshape(n, heads, hd).transpose(1, 0, 2)
        q, k, v = proj["q"], proj["k"], proj["v"]
        if p + "self_attn.q_norm.weight" in w:
            q, k = norm(q, w[p + "self_attn.q_norm.weight"]), norm(k, w[p + "self_attn.k_norm.weight"])
        q, k = rope(q), rope(k)
        rep = n_head // n_head_kv
        k, v = np.repeat(k, rep, 0), np.repeat(v, rep, 0)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = (att @ v).transpose(1, 0, 2).reshape(n, d)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return norm(x, w["model.norm.weight"]) @ head.T


def build_tiny_other(folder: Path, arch: str, *, n_layer: int = 2, n_embd: int = 256,
                     n_ff: int = 512, n_head: int = 4, n_head_kv: int = 2, vocab: int = 384,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Gemma2/Gemma3 (extra norms stored as w with (1 + w) applied, tied embeddings) and Phi3
    (fused qkv_proj and gate_up_proj) in HF form, F32 weights."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    hd = n_embd // n_head

    def mat(rows, cols, scale=0.05):
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    def vec(n, center):
        return (center + 0.1 * rng.standard_normal(n)).astype(np.float32)

    gemma = arch.startswith("Gemma")
    c = 0.0 if gemma else 1.0  # Gemma stores norms as offsets from 1
    w = {"model.embed_tokens.weight": mat(vocab, n_embd, 0.5 if not gemma else 0.05),
         "model.norm.weight": vec(n_embd, c)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = vec(n_embd, c)
        w[p + "post_attention_layernorm.weight"] = vec(n_embd, c)
        if gemma and arch != "GemmaForCausalLM":   # Gemma 1 has no pre/post-FFN norms
            w[p + "pre_feedforward_layernorm.weight"] = vec(n_embd, c)
            w[p + "post_feedforward_layernorm.weight"] = vec(n_embd, c)
        if gemma:
            w[p + "self_attn.q_proj.weight"] = mat(n_head * hd, n_embd, 0.2)
            w[p + "self_attn.k_proj.weight"] = mat(n_head_kv * hd, n_embd, 0.2)
            w[p + "self_attn.v_proj.weight"] = mat(n_head_kv * hd, n_embd)
            w[p + "mlp.gate_proj.weight"] = mat(n_ff, n_embd)
            w[p + "mlp.up_proj.weight"] = mat(n_ff, n_embd)
        else:
            w[p + "self_attn.qkv_proj.weight"] = mat((n_head + 2 * n_head_kv) * hd, n_embd, 0.2)
            w[p + "mlp.gate_up_proj.weight"] = mat(2 * n_ff, n_embd)
        if arch == "Gemma3ForCausalLM":
            w[p + "self_attn.q_norm.weight"] = vec(hd, 0.0)
            w[p + "self_attn.k_norm.weight"] = vec(hd, 0.0)
        w[p + "self_attn.o_proj.weight"] = mat(n_embd, n_head * hd)
        w[p + "mlp.down_proj.weight"] = mat(n_embd, n_ff)
    if not gemma:
        w["lm_head.weight"] = mat(vocab, n_embd, 0.2)
    write_safetensors(folder / "model.safetensors", w, "F32")
    cfg = {"architectures": [arch], "hidden_size": n_embd, "intermediate_size": n_ff,
           "num_hidden_layers": n_layer, "num_attention_heads": n_head,
           "num_key_value_heads": n_head_kv, "head_dim": hd, "vocab_size": vocab,
           "max_position_embeddings": 512, "rope_theta": 10000.0, "bos_token_id": 1,
           "eos_token_id": 2}
    if arch == "GemmaForCausalLM":
        cfg.update(model_type="gemma", rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh")
    elif arch == "Gemma2ForCausalLM":
        cfg.update(model_type="gemma2", rms_norm_eps=1e-6, attn_logit_softcapping=50.0,
                   final_logit_softcapping=30.0, sliding_window=4096, query_pre_attn_scalar=hd,
                   hidden_activation="gelu_pytorch_tanh")
    elif arch == "Gemma3ForCausalLM":
        cfg.update(model_type="gemma3_text", rms_norm_eps=1e-6, sliding_window=512,
                   sliding_window_pattern=6, rope_local_base_freq=10000.0, query_pre_attn_scalar=hd,
                   final_logit_softcapping=None, attn_logit_softcapping=None,
                   hidden_activation="gelu_pytorch_tanh")
    else:
        cfg.update(model_type="phi3", rms_norm_eps=1e-5, original_max_position_embeddings=512,
                   sliding_window=None, tie_word_embeddings=False)
    (folder / "config.json").write_text(json.dumps(cfg))
    train_tokenizer(folder, vocab)
    return w


def numpy_forward_other(w: dict[str, np.ndarray], tokens: list[int], arch: str, *, n_layer: int,
                        n_head: int = 4, n_head_kv: int = 2, theta: float = 10000.0) -> np.ndarray:
    """Logits of the HF Gemma2/Gemma3/Phi3 computation for a short sequence, float64."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    gemma = arch.startswith("Gemma")
    eps = 1e-6 if gemma else 1e-5
    x = w["model.embed_tokens.weight"][tokens]
    n, d = x.shape
    hd = d // n_head
    if gemma:
        x = x * np.sqrt(d)
    inv = theta ** (-np.arange(0, hd, 2) / hd)
    ang = np.outer(np.arange(n), inv)
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))

    def norm(v, g):
        v = v / np.sqrt((v * v).mean(-1, keepdims=True) + eps)
        return v * (1 + g) if gemma else v * g

    def rope(v):
        return v * cos + np.concatenate([-v[..., hd // 2:], v[..., : hd // 2]], -1) * sin

    def gelu_tanh(v):
        return 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v ** 3)))

    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(n_layer):
        p = f"model.layers.{i}."
        h = norm(x, w[p + "input_layernorm.weight"])
        if gemma:
            q, k, v = (h @ w[p + f"self_attn.{m}_proj.weight"].T for m in "qkv")
        else:
            q, k, v = np.split(h @ w[p + "self_attn.qkv_proj.weight"].T,
                               [n_head * hd, (n_head + n_head_kv) * hd], axis=1)
        q = q.reshape(n, n_head, hd).transpose(1, 0, 2)
        k = k.reshape(n, n_head_kv, hd).transpose(1, 0, 2)
        v = v.reshape(n, n_head_kv, hd).transpose(1, 0, 2)
        if p + "self_attn.q_norm.weight" in w:
            q, k = norm(q, w[p + "self_attn.q_norm.weight"]), norm(k, w[p + "self_attn.k_norm.weight"])
        q, k = rope(q), rope(k)
        rep = n_head // n_head_kv
        k, v = np.repeat(k, rep, 0), np.repeat(v, rep, 0)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        if arch == "Gemma2ForCausalLM":
            att = np.tanh(att / 50.0) * 50.0
        att = att + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = (att @ v).transpose(1, 0, 2).reshape(n, d) @ w[p + "self_attn.o_proj.weight"].T
        if arch == "GemmaForCausalLM":
            x = x + o
            h = norm(x, w[p + "post_attention_layernorm.weight"])
            m = (gelu_tanh(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T))
            x = x + m @ w[p + "mlp.down_proj.weight"].T
        elif gemma:
            x = x + norm(o, w[p + "post_attention_layernorm.weight"])
            h = norm(x, w[p + "pre_feedforward_layernorm.weight"])
            m = (gelu_tanh(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T))
            x = x + norm(m @ w[p + "mlp.down_proj.weight"].T, w[p + "post_feedforward_layernorm.weight"])
        else:
            x = x + o
            h = norm(x, w[p + "post_attention_layernorm.weight"])
            g, u = np.split(h @ w[p + "mlp.gate_up_proj.weight"].T, 2, axis=1)
            x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    logits = norm(x, w["model.norm.weight"]) @ w.get("lm_head.weight", w["model.embed_tokens.weight"]).T
    if arch == "Gemma2ForCausalLM":
        logits = np.tanh(logits / 30.0) * 30.0
    return logits
