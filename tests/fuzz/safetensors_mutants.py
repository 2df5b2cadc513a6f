"""Seeded, structure-aware mutants of a small safetensors checkpoint, and the one way to run them.

The seed is a complete one-layer llama checkpoint (every tensor llama.cpp needs, F32/F16/BF16),
next to a config.json and a placeholder tokenizer, so a mutant goes through everything that
happens before the first byte of output: the header parser, the tensor map, the architecture's
shape table, and the reads of every tensor (whole and by rows). Mutations work on the structure
(the header's JSON values: dtypes, shapes, offsets, names, nesting, the length prefix) and on the
file (truncation before opening and while reading, trailing bytes, flipped header bytes).

    for m in mutants(seed=0, count=300):
        outcome = run_mutant(m, folder)      # "accepted" or "refused" (ConvertError); anything
                                             # else propagates: that is the bug a fuzz run finds

Used by tests/fuzz/test_safetensors_fuzz.py (a few hundred in CI) and
benchmarks/fuzz_safetensors.py (many more, with counts).
"""
from __future__ import annotations

import copy
import json
import random
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, VOCAB = 8, 2, 1, 16, 16
HEAD_DIM = N_EMBD // N_HEAD
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": N_EMBD,
          "intermediate_size": N_FF, "num_hidden_layers": 1, "num_attention_heads": N_HEAD,
          "num_key_value_heads": N_HEAD_KV, "vocab_size": VOCAB, "max_position_embeddings": 64,
          "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True}
_NP = {"F32": np.float32, "F16": np.float16}


def seed_tensors() -> dict[str, tuple[str, tuple[int, ...]]]:
    """HF name -> (dtype, shape) of the seed: every tensor of a one-layer llama, mixed dtypes."""
    p = "model.layers.0."
    kv = N_HEAD_KV * HEAD_DIM
    return {
        "model.embed_tokens.weight": ("BF16", (VOCAB, N_EMBD)),
        "model.norm.weight": ("F32", (N_EMBD,)),
        p + "input_layernorm.weight": ("F32", (N_EMBD,)),
        p + "post_attention_layernorm.weight": ("F32", (N_EMBD,)),
        p + "self_attn.q_proj.weight": ("F16", (N_EMBD, N_EMBD)),
        p + "self_attn.k_proj.weight": ("F16", (kv, N_EMBD)),
        p + "self_attn.v_proj.weight": ("BF16", (kv, N_EMBD)),
        p + "self_attn.o_proj.weight": ("F32", (N_EMBD, N_EMBD)),
        p + "mlp.gate_proj.weight": ("F16", (N_FF, N_EMBD)),
        p + "mlp.up_proj.weight": ("BF16", (N_FF, N_EMBD)),
        p + "mlp.down_proj.weight": ("F32", (N_EMBD, N_FF)),
    }


def seed_checkpoint(rng: random.Random | None = None) -> tuple[dict, bytes]:
    """The seed's header (a dict, as in the file) and its data section."""
    rng = rng or random.Random(0)
    gen = np.random.default_rng(rng.randrange(2**32))
    header: dict = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, (dtype, shape) in seed_tensors().items():
        values = gen.standard_normal(shape).astype(np.float32) * 0.1
        if dtype == "BF16":
            data = (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
        else:
            data = values.astype(_NP[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    return header, b"".join(blobs)


def encode(header, data: bytes, *, length: int | None = None) -> bytes:
    """header (any JSON value, or raw bytes) + data as a file; `length` overrides the prefix."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


@dataclass
class Mutant:
    seed: int
    ops: list[str] = field(default_factory=list)   # what was done, for the failure message
    file: bytes = b""
    truncate_while_reading: int | None = None      # shrink the file to this size after opening

    def __str__(self) -> str:
        return f"mutant {self.seed}: " + "; ".join(self.ops)


# -- header (structure) mutations: each takes (rng, header dict) and returns a description --------

_ODD_VALUES = [-1, 0, 1, 2**31, 2**63, 2**64 + 1, 10**20, 1e20, -1e20, 1.5, float("nan"), float("inf"),
               "3", "", None, True, False, [], {}, [1], {"a": 1}]
_DTYPES = ["F32", "F16", "BF16", "F64", "I8", "U8", "I64", "BOOL", "F8_E4M3", "F4", "f32", "", "X" * 300]


def _tensor(rng, h) -> str | None:
    names = [k for k in h if k != "__metadata__"]
    return rng.choice(names) if names else None


def _entry(rng, h) -> dict | None:
    name = _tensor(rng, h)
    entry = h.get(name) if name else None
    return entry if isinstance(entry, dict) else None


def m_dtype(rng, h):
    e = _entry(rng, h)
    if e is not None:
        e["dtype"] = rng.choice(_DTYPES + _ODD_VALUES)
        return f"dtype={e['dtype']!r}"[:60]
    return "dtype: no entry"


def m_shape_dim(rng, h):
    e = _entry(rng, h)
    if e is None or not isinstance(e.get("shape"), list) or not e["shape"]:
        return "shape dim: no entry"
    i = rng.randrange(len(e["shape"]))
    old = e["shape"][i]
    e["shape"][i] = rng.choice(_ODD_VALUES + ([old + 1, old - 1, old * 2, old // 2] if isinstance(old, int) else []))
    return f"shape[{i}]={e['shape'][i]!r}"


def m_shape_rank(rng, h):
    e = _entry(rng, h)
    if e is None or not isinstance(e.get("shape"), list):
        return "shape rank: no entry"
    how = rng.choice(["add1", "drop", "many", "empty", "swap", "notlist"])
    if how == "add1":
        e["shape"].insert(rng.randrange(len(e["shape"]) + 1), 1)
    elif how == "drop" and e["shape"]:
        e["shape"].pop(rng.randrange(len(e["shape"])))
    elif how == "many":
        e["shape"] = e["shape"] + [1] * rng.choice([5, 100, 10_000])
    elif how == "empty":
        e["shape"] = []
    elif how == "swap":
        e["shape"] = e["shape"][::-1]
    else:
        e["shape"] = rng.choice(["8,8", 64, None, {"0": 8}])
    return f"shape {how}"


def m_offsets(rng, h):
    name = _tensor(rng, h)
    e = h.get(name) if name else None
    if not isinstance(e, dict) or not isinstance(e.get("data_offsets"), list) or len(e["data_offsets"]) != 2:
        return "offsets: no entry"
    b, end = e["data_offsets"]
    if not (isinstance(b, int) and isinstance(end, int)):
        return "offsets: not ints"
    others = [v for k, v in h.items() if k not in ("__metadata__", name) and isinstance(v, dict)
              and isinstance(v.get("data_offsets"), list)]
    how = rng.choice(["shift", "negative", "swap", "overlap", "into_header", "grow", "shrink", "odd", "len"])
    if how == "shift":
        k = rng.choice([-8, -2, -1, 1, 2, 8])
        e["data_offsets"] = [b + k, end + k]
    elif how == "negative":
        e["data_offsets"] = [-(end - b), 0] if rng.random() < 0.5 else [-8, end - b - 8]
    elif how == "swap":
        e["data_offsets"] = [end, b]
    elif how == "overlap" and others:
        o = rng.choice(others)["data_offsets"]
        e["data_offsets"] = list(o) if rng.random() < 0.5 else [o[0], o[0] + (end - b)]
    elif how == "into_header":
        e["data_offsets"] = [-(end - b) - rng.randrange(64), -rng.randrange(64)]
    elif how == "grow":
        e["data_offsets"] = [b, end + rng.choice([1, 2, 4, 1 << 20, 2**62])]
    elif how == "shrink":
        e["data_offsets"] = [b, max(b, end - rng.choice([1, 2, 4]))]
    elif how == "odd":
        e["data_offsets"] = [rng.choice(_ODD_VALUES), end]
    else:
        e["data_offsets"] = rng.choice([[b], [b, end, end], [], "0-8", None])
    return f"offsets {how}"


def m_keys(rng, h):
    e = _entry(rng, h)
    if e is None:
        return "keys: no entry"
    key = rng.choice(["dtype", "shape", "data_offsets"])
    if rng.random() < 0.5:
        e.pop(key, None)
        return f"drop {key}"
    e["extra_" + str(rng.randrange(9))] = rng.choice(_ODD_VALUES)
    return "extra key"


def m_entries(rng, h):
    name = _tensor(rng, h)
    if name is None:
        return "entries: none"
    how = rng.choice(["delete", "rename_odd", "rename_unmapped", "duplicate", "not_dict", "layer_out_of_range"])
    if how == "delete":
        del h[name]
    elif how == "rename_odd":
        h[rng.choice(["\x00", "\x1b[2J", "a\nb", "é" * 500, "", " " * 10, "model.layers.0.\r"])] = h.pop(name)
    elif how == "rename_unmapped":
        h["model.layers.0.self_attn.nonsense.weight"] = h.pop(name)
    elif how == "duplicate":
        h[name + ".copy"] = copy.deepcopy(h[name])
    elif how == "not_dict":
        h[name] = rng.choice(_ODD_VALUES)
    else:
        h[name.replace("layers.0.", "layers.1000000000.")] = h.pop(name)
    return f"entry {how}"


def m_metadata(rng, h):
    h["__metadata__"] = rng.choice([None, 5, "x", [1, 2], {"a": {"b": [1] * 100}}, {"format": "pt" * 1000}])
    return "metadata"


def m_nesting(rng, h):
    depth = rng.choice([10, 100, 900])   # json.dumps recurses too; deeper nesting: "deep_raw" below
    target = rng.choice(["metadata", "shape", "entry"])
    deep: object = 1
    for _ in range(depth):
        deep = [deep]
    if target == "metadata":
        h["__metadata__"] = {"deep": deep}
    elif target == "shape":
        e = _entry(rng, h)
        if e is not None:
            e["shape"] = [deep]
    else:
        h["deep"] = deep
    return f"nesting {target}"


HEADER_OPS = [m_dtype, m_shape_dim, m_shape_rank, m_offsets, m_offsets, m_keys, m_entries, m_metadata, m_nesting]


def _file_op(rng, m: Mutant, header, data: bytes) -> bytes:
    """A mutation of the file as bytes (after the header ops)."""
    how = rng.choice(["truncate", "truncate_while_reading", "append", "length", "flip", "raw_json",
                      "not_object", "deep_raw", "none", "none"])
    if how == "none":
        return encode(header, data)
    m.ops.append(how)
    if how == "truncate":
        f = encode(header, data)
        return f[:rng.randrange(len(f))]
    if how == "truncate_while_reading":
        f = encode(header, data)
        m.truncate_while_reading = rng.randrange(len(f) - len(data), len(f))
        return f
    if how == "append":
        return encode(header, data) + bytes(rng.randrange(1, 64))
    if how == "length":
        f = encode(header, data)
        n = struct.unpack("<Q", f[:8])[0]
        return encode(header, data, length=rng.choice([0, 1, n - 1, n + 1, n + 8, len(f), 2**63, 2**64 - 1]))
    if how == "flip":
        f = bytearray(encode(header, data))
        n = struct.unpack("<Q", f[:8])[0]
        for _ in range(rng.randint(1, 4)):
            f[8 + rng.randrange(n)] = rng.randrange(256)
        return bytes(f)
    if how == "raw_json":
        return encode(rng.choice([b"{", b"", b"\xff\xfe{}", b'{"a": NaN}', b"[]" * 1000, b"{}" + b"x" * 9]), data)
    if how == "not_object":
        return encode(rng.choice([[], "x", 5, None, [header]]), data)
    depth = rng.choice([10_000, 200_000])   # nesting past any recursion limit
    return encode(b'{"__metadata__": ' + b"[" * depth + b"]" * depth + b"}", data)


def mutants(seed: int = 0, count: int = 300):
    """`count` mutants, the same ones for the same seed."""
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        header, data = seed_checkpoint(rng)
        m = Mutant(seed=seed * 1_000_003 + i)
        for op in rng.sample(HEADER_OPS, rng.choice([0, 1, 1, 1, 2, 3])):
            m.ops.append(op(rng, header))
        m.file = _file_op(rng, m, header, data)
        if not m.ops:
            m.ops.append("unchanged")
        yield m


def write_folder(folder: Path, file: bytes) -> Path:
    """An HF folder around `file`: config.json, a placeholder tokenizer (opening a source checks
    it is there; it is read only when writing), model.safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(file)
    return folder


@dataclass
class Outcome:
    kind: str            # "accepted" | "refused"
    message: str         # the ConvertError's text, when refused
    seconds: float


def run_mutant(m: Mutant, folder: Path) -> Outcome:
    """Open the mutant as a model source and read every tensor, whole and by rows.

    Returns accepted/refused; any exception other than ConvertError propagates.
    """
    from quantdesk.core.convert import ConvertError, open_source
    write_folder(folder, m.file)
    start = time.perf_counter()
    try:
        source = open_source(folder)
        try:
            for i, t in enumerate(source.tensors):
                if i == 1 and m.truncate_while_reading is not None:
                    # after the first read, so a reader that maps the file has mapped it: a mapped
                    # file that shrinks is SIGBUS on the next touch, not an exception
                    with open(folder / "model.safetensors", "r+b") as f:
                        f.truncate(m.truncate_while_reading)
                values = t.load()
                assert values.shape == tuple(t.shape) and values.dtype == np.float32, (t.name, values.shape)
                if t.load_rows is not None and t.shape[0]:
                    rows = t.load_rows(0, 1)
                    assert rows.shape == (1, t.shape[-1]), (t.name, rows.shape)
        finally:
            source.close()
    except ConvertError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, f"{m}: message is not one line: {message!r}"
        return Outcome("refused", message, time.perf_counter() - start)
    return Outcome("accepted", "", time.perf_counter() - start)


def reason(message: str) -> str:
    """A refusal's kind, for counting: the message without names and numbers."""
    import re
    text = message.split(": ", 1)[1] if message.startswith("model.safetensors") and ": " in message else message
    text = re.sub(r"tensor \S+", "tensor X", text)
    text = re.sub(r"\S*[\[\]{}'\"]\S*", "…", text)
    text = re.sub(r"\d+", "N", text)
    return " ".join(text.split()[:8])
