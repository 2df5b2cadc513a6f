"""Seeded, structure-aware mutants of a small GGUF model, and the one way to run them.

The seed is a complete two-layer llama GGUF (metadata of every value type, a vocabulary, F32/F16/
Q8_0 tensors laid out at the alignment). A mutant changes it at two levels:
  * the model: value types of known keys (a block count that is NaN, a string, a list of strings),
    names with control characters or 63 bytes, dims, offsets, the alignment, huge layer indices,
    many extra entries or tensors, duplicates, missing or odd architecture, split metadata;
  * the encoded bytes, field by field (the encoder records where each count, length, type id, dim
    and offset lies): each field gets an interesting value of its width; then truncation or
    trailing bytes.

    for m in mutants(seed=0, count=2000):
        outcome = run_mutant(m, path)      # "accepted" / "refused" (GGUFError or HeaderError);
                                           # anything else propagates: that is the bug

A mutant is accepted when `inspect_gguf` accepts the file; it is then planned (`plan_for_model`,
and `options_for` on every tenth) and must give a Plan or PlannerError. Every mutant is also read
as a remote prefix (`read_prefix`, HeaderError allowed) and, when that header parses, planned
from it (`plan_header`). Used by tests/fuzz/test_gguf_fuzz.py and benchmarks/fuzz_gguf.py, both
through `python tests/fuzz/gguf_mutants.py --child ...`, which runs mutants under a memory limit.
"""
from __future__ import annotations

import json
import random
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

# GGUFValueType ids (quantdesk.core.gguf.header spells them the same way).
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q",
        I64: "q", F64: "d"}
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
_TYPE_SIZE = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_Q8_0: (32, 34)}
N_EMBD, N_FF, N_VOCAB, N_LAYER = 32, 64, 16, 2
DATA_CAP = 1 << 20          # a mutant that claims more tensor data gets this much (then: truncated)


@dataclass
class KV:
    key: bytes
    vtype: int
    value: object           # python value; arrays: (element type, [items])


@dataclass
class Tensor:
    name: bytes
    dims: list[int]         # GGUF order: dims[0] is the row length
    ggml_type: int
    offset: int | None = None   # None: laid out after the previous one


@dataclass
class Model:
    kvs: list[KV]
    tensors: list[Tensor]
    version: int = 3
    alignment: int = 32


def _s(text: str) -> bytes:
    return text.encode()


def seed_model() -> Model:
    """A two-layer llama that inspect_gguf accepts and the planner plans."""
    kvs = [
        KV(b"general.architecture", STR, "llama"),
        KV(b"general.name", STR, "Fuzz Seed"),
        KV(b"general.file_type", U32, 7),                       # MOSTLY_Q8_0
        KV(b"general.quantization_version", U32, 2),
        KV(b"llama.block_count", U32, N_LAYER),
        KV(b"llama.context_length", U32, 512),
        KV(b"llama.embedding_length", U32, N_EMBD),
        KV(b"llama.feed_forward_length", U32, N_FF),
        KV(b"llama.attention.head_count", U32, 4),
        KV(b"llama.attention.head_count_kv", U32, 2),
        KV(b"llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
        KV(b"llama.rope.freq_base", F32, 10000.0),
        KV(b"llama.vocab_size", U32, N_VOCAB),
        KV(b"tokenizer.ggml.model", STR, "llama"),
        KV(b"tokenizer.ggml.tokens", ARR, (STR, [f"t{i}" for i in range(N_VOCAB)])),
        KV(b"tokenizer.ggml.scores", ARR, (F32, [float(-i) for i in range(N_VOCAB)])),
        KV(b"tokenizer.ggml.token_type", ARR, (I32, [1] * N_VOCAB)),
        KV(b"tokenizer.ggml.bos_token_id", U32, 1),
        KV(b"tokenizer.ggml.add_bos_token", BOOL, True),
        KV(b"tokenizer.chat_template", STR, "{% for m in messages %}{{ m.content }}{% endfor %}"),
        KV(b"general.size_label", STR, "1K"),
        KV(b"general.alignment", U32, 32),
    ]
    kv_dim = N_EMBD // 2
    tensors = [Tensor(b"token_embd.weight", [N_EMBD, N_VOCAB], GGML_F16)]
    for i in range(N_LAYER):
        p = f"blk.{i}.".encode()
        tensors += [
            Tensor(p + b"attn_norm.weight", [N_EMBD], GGML_F32),
            Tensor(p + b"attn_q.weight", [N_EMBD, N_EMBD], GGML_Q8_0),
            Tensor(p + b"attn_k.weight", [N_EMBD, kv_dim], GGML_Q8_0),
            Tensor(p + b"attn_v.weight", [N_EMBD, kv_dim], GGML_Q8_0),
            Tensor(p + b"attn_output.weight", [N_EMBD, N_EMBD], GGML_Q8_0),
            Tensor(p + b"ffn_norm.weight", [N_EMBD], GGML_F32),
            Tensor(p + b"ffn_gate.weight", [N_EMBD, N_FF], GGML_Q8_0),
            Tensor(p + b"ffn_up.weight", [N_EMBD, N_FF], GGML_Q8_0),
            Tensor(p + b"ffn_down.weight", [N_FF, N_EMBD], GGML_F16),
        ]
    tensors += [Tensor(b"output_norm.weight", [N_EMBD], GGML_F32),
                Tensor(b"output.weight", [N_EMBD, N_VOCAB], GGML_Q8_0)]
    return Model(kvs, tensors)


# ---- encoding, with a map of where each field lies -------------------------------------------------

@dataclass
class Field:
    kind: str       # "n_tensors", "key_len", "vtype", "str_len", "arr_type", "arr_count", "dim", ...
    pos: int
    fmt: str        # struct code of the field ("Q", "I", "f", ...)


class _Writer:
    def __init__(self):
        self.parts: list[bytes] = []
        self.pos = 0
        self.fields: list[Field] = []

    def put(self, kind: str | None, fmt: str, value) -> None:
        raw = struct.pack("<" + fmt, value)
        if kind:
            self.fields.append(Field(kind, self.pos, fmt))
        self.parts.append(raw)
        self.pos += len(raw)

    def raw(self, data: bytes) -> None:
        self.parts.append(data)
        self.pos += len(data)

    def string(self, kind: str, data: bytes) -> None:
        self.put(kind, "Q", len(data))
        self.raw(data)

    def value(self, vtype: int, value) -> None:
        if vtype == STR:
            self.string("str_len", value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value)
        elif vtype == ARR:
            etype, items = value
            self.put("arr_type", "I", etype)
            self.put("arr_count", "Q", len(items))
            for item in items:
                self.value(etype, item)
        else:
            self.put(f"scalar{vtype}", _FMT[vtype], value)


def tensor_nbytes(t: Tensor) -> int:
    block, size = _TYPE_SIZE.get(t.ggml_type, (1, 4))
    n = 1
    for d in t.dims:
        n *= d
    return n // block * size


def encode(model: Model, data_cap: int = DATA_CAP) -> tuple[bytes, list[Field]]:
    """The GGUF file for `model` (its tensor data zeros, cut at `data_cap` bytes), and where each
    field lies in it."""
    w = _Writer()
    w.raw(b"GGUF")
    w.put("version", "I", model.version)
    w.put("n_tensors", "Q", len(model.tensors))
    w.put("n_kv", "Q", len(model.kvs))
    for kv in model.kvs:
        w.string("key_len", kv.key)
        w.put("vtype", "I", kv.vtype)
        w.value(kv.vtype, kv.value)
    align = model.alignment if model.alignment > 0 else 32
    offset = 0
    for t in model.tensors:
        w.string("name_len", t.name)
        w.put("n_dims", "I", len(t.dims))
        for d in t.dims:
            w.put("dim", "Q", d)
        w.put("ggml_type", "I", t.ggml_type)
        at = t.offset if t.offset is not None else offset
        w.put("offset", "Q", at % (1 << 64))
        offset = -(-(at + tensor_nbytes(t)) // align) * align
    header = b"".join(w.parts)
    header += bytes(-len(header) % align)
    return header + bytes(min(max(offset, 0), data_cap)), w.fields


# ---- mutations of the model -------------------------------------------------------------------

_ODD_SCALARS = [(F32, float("nan")), (F32, float("inf")), (F32, float("-inf")), (F64, 1e300), (F64, -1.0),
                (F32, 2.5), (U64, 2**64 - 1), (I64, -2**63), (I32, -1), (U32, 0), (U32, 10**9), (U32, 2**32 - 1),
                (U8, 255), (BOOL, True), (STR, "abc"), (STR, ""), (STR, "\x1b[2J\r\n"),
                (ARR, (STR, ["x", "y"])), (ARR, (F32, [float("nan")] * 3)), (ARR, (U32, [])),
                (ARR, (I32, [-5, 7, 2**31 - 1])), (ARR, (U32, [4] * 600)), (ARR, (BOOL, [True, False]))]
_COUNT_KEYS = [b"llama.block_count", b"llama.embedding_length", b"llama.attention.head_count",
               b"llama.attention.head_count_kv", b"llama.context_length", b"llama.feed_forward_length",
               b"llama.vocab_size", b"llama.attention.key_length", b"llama.attention.value_length",
               b"llama.attention.sliding_window", b"llama.attention.sliding_window_pattern",
               b"llama.expert_count", b"general.file_type", b"split.count", b"split.no",
               b"split.tensors.count", b"general.alignment"]
_ODD_NAMES = [b"\x00", b"a\x00b", b"\x1b[31mred\x1b[0m", b"line\nbreak", b"cr\r", b"\xff\xfe", b"",
              b"x" * 63, b"y" * 64, "é".encode() * 31, b"\xe2\x80\xae" + b"rtl", b" ", b"blk.0.attn_q.weight"]
_HUGE_LAYERS = [b"blk.1000000000.w", b"blk.512.attn_q.weight", b"blk.511.attn_q.weight",
                b"blk.99999999999999999999999999.x", b"blk.-1.attn_q.weight", b"blk..x", b"blk.2.attn_q.weight"]


def _kv(model: Model, key: bytes) -> KV | None:
    return next((kv for kv in model.kvs if kv.key == key), None)


def _ensure(model: Model, key: bytes, vtype: int, value) -> KV:
    """The entry for `key` (added when an earlier mutation renamed or dropped it)."""
    kv = _kv(model, key)
    if kv is None:
        model.kvs.append(kv := KV(key, vtype, value))
    return kv


def m_value_type(rng, model: Model) -> str:
    key = rng.choice(_COUNT_KEYS)
    vtype, value = rng.choice(_ODD_SCALARS)
    kv = _ensure(model, key, vtype, value)
    kv.vtype, kv.value = vtype, value
    return f"{key.decode()}={vtype}:{value!r}"[:80]


def m_other_value(rng, model: Model) -> str:
    kv = rng.choice(model.kvs)
    vtype, value = rng.choice(_ODD_SCALARS)
    kv.vtype, kv.value = vtype, value
    return f"{kv.key[:30]!r}={vtype}:{value!r}"[:80]


def m_name(rng, model: Model) -> str:
    name = rng.choice(_ODD_NAMES + [rng.choice(_ODD_NAMES) + b"." + rng.choice(_ODD_NAMES)])
    if rng.random() < 0.5:
        rng.choice(model.kvs).key = name
        return f"key {name[:20]!r}"
    rng.choice(model.tensors).name = name
    return f"tensor name {name[:20]!r}"


def m_string_value(rng, model: Model) -> str:
    text = rng.choice(["\x00" * 10, "\x1b]0;title\x07", "a\r\nb", "x" * 1885, "\udcff", "{% for %}",
                      "{{ 'x' * 1500000000 }}", "é" * 300])
    key = rng.choice([b"general.name", b"general.architecture", b"tokenizer.chat_template",
                      b"general.size_label", b"general.type", b"tokenizer.ggml.model"])
    kv = _ensure(model, key, STR, text)
    kv.vtype, kv.value = STR, text
    return f"{key.decode()}={text[:20]!r}"


def m_kind(rng, model: Model) -> str:
    how = rng.choice(["no_arch", "clip", "adapter", "imatrix", "other_arch", "no_tensors", "no_blocks"])
    if how == "no_arch":
        model.kvs = [kv for kv in model.kvs if kv.key != b"general.architecture"]
    elif how == "clip":
        _ensure(model, b"general.architecture", STR, "").value = "clip"
    elif how in ("adapter", "imatrix"):
        model.kvs.append(KV(b"general.type", STR, how))
    elif how == "other_arch":
        _ensure(model, b"general.architecture", STR, "").value = rng.choice(["gemma3", "qwen2", "x" * 200, "llama\x00"])
    elif how == "no_tensors":
        model.tensors = []
    else:
        model.kvs = [kv for kv in model.kvs if kv.key != b"llama.block_count"]
    return how


def m_dims(rng, model: Model) -> str:
    t = rng.choice(model.tensors)
    how = rng.choice(["zero", "one", "add", "drop", "five", "huge", "odd_row", "empty", "big"])
    if how == "zero":
        t.dims[rng.randrange(len(t.dims))] = 0
    elif how == "one":
        t.dims = [1] * len(t.dims)
    elif how == "add":
        t.dims.append(rng.choice([1, 2, 7]))
    elif how == "drop" and len(t.dims) > 1:
        t.dims.pop()
    elif how == "five":
        t.dims = t.dims + [1] * (5 - len(t.dims))
    elif how == "huge":
        t.dims[rng.randrange(len(t.dims))] = rng.choice([2**31, 2**32, 2**40, 2**63, 2**64 - 1])
    elif how == "odd_row":
        t.dims[0] = rng.choice([1, 31, 33, 17])
    elif how == "empty":
        t.dims = []
    else:
        t.dims[-1] *= rng.choice([2, 64, 4096])
    return f"dims {how} of {t.name[:24]!r}"


def m_type(rng, model: Model) -> str:
    t = rng.choice(model.tensors)
    t.ggml_type = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 14, 30, 31, 39, 40, 99, 2**31])
    return f"type {t.ggml_type} for {t.name[:24]!r}"


def m_offsets(rng, model: Model) -> str:
    t = rng.choice(model.tensors)
    how = rng.choice(["shift", "zero", "huge", "misalign", "swap", "back"])
    expected = sum(-(-tensor_nbytes(u) // 32) * 32 for u in model.tensors[:model.tensors.index(t)])
    if how == "shift":
        t.offset = expected + rng.choice([32, 64, -32])
    elif how == "zero":
        t.offset = 0
    elif how == "huge":
        t.offset = rng.choice([2**40, 2**63, 2**64 - 32])
    elif how == "misalign":
        t.offset = expected + rng.choice([1, 2, 16])
    elif how == "swap" and len(model.tensors) > 1:
        i = rng.randrange(len(model.tensors) - 1)
        model.tensors[i], model.tensors[i + 1] = model.tensors[i + 1], model.tensors[i]
        model.tensors[i].offset = expected
    else:
        t.offset = max(expected - 32, 0)
    return f"offset {how}"


def m_alignment(rng, model: Model) -> str:
    value = rng.choice([0, 1, 2, 8, 24, 64, 4096, 2**31, 2**32 - 1])
    kv = _ensure(model, b"general.alignment", U32, 32)
    kv.vtype, kv.value = rng.choice([U32, U32, U32, U64, I32]), value
    if kv.vtype in (U32, I32) and value >= 2**31 and kv.vtype == I32:
        kv.value = -1
    if value and not value & (value - 1) and value <= 4096:
        model.alignment = value
    return f"alignment {kv.vtype}:{kv.value}"


def m_layers(rng, model: Model) -> str:
    if rng.random() < 0.5:
        name = rng.choice(_HUGE_LAYERS)
        rng.choice(model.tensors).name = name
        return f"layer name {name[:32]!r}"
    kv = _ensure(model, b"llama.block_count", U32, 0)
    kv.vtype = U32 if rng.random() < 0.7 else U64
    kv.value = rng.choice([0, 1, 3, 512, 513, 10**9, 2**32 - 1] + ([2**64 - 1, 10**12] if kv.vtype == U64 else []))
    return f"block_count {kv.value}"


def m_many(rng, model: Model) -> str:
    n = rng.choice([100, 2000, 20000])   # tensors: a quarter (5,000: a big MoE has a few thousand)
    if rng.random() < 0.6:
        vtype = rng.choice([U8, STR, ARR])
        for i in range(n):
            model.kvs.append(KV(f"x.k{i}".encode(), vtype, {U8: 1, STR: "v", ARR: (U8, [1])}[vtype]))
        return f"{n} extra metadata entries ({vtype})"
    n //= 4
    for i in range(n):
        model.tensors.append(Tensor(f"x.{i}".encode(), [32], GGML_F32))
    return f"{n} extra tensors"


def m_duplicate(rng, model: Model) -> str:
    if rng.random() < 0.5:
        kv = rng.choice(model.kvs)
        model.kvs.append(KV(kv.key, kv.vtype, kv.value))
        return "duplicate key"
    t = rng.choice(model.tensors)
    model.tensors.append(Tensor(t.name, list(t.dims), t.ggml_type))
    return "duplicate tensor"


def m_split(rng, model: Model) -> str:
    model.kvs += [KV(b"split.no", U16, rng.choice([0, 1, 65535])),
                  KV(b"split.count", U16, rng.choice([0, 1, 2, 65535])),
                  KV(b"split.tensors.count", I32, rng.choice([0, len(model.tensors), -1]))]
    return "split metadata"


def m_arrays(rng, model: Model) -> str:
    kv = _ensure(model, b"tokenizer.ggml.tokens", ARR, (STR, []))
    kv.vtype = ARR
    how = rng.choice(["long", "empty", "nested", "bad_etype", "ints", "huge_strings"])
    if how == "long":
        kv.value = (STR, [f"t{i}" for i in range(rng.choice([4097, 50000]))])
    elif how == "empty":
        kv.value = (STR, [])
    elif how == "nested":
        kv.value = (ARR, [])
    elif how == "bad_etype":
        kv.value = (rng.choice([13, 99]), [])
    elif how == "ints":
        kv.value = (U32, list(range(N_VOCAB)))
    else:
        kv.value = (STR, ["x" * 100000] * 3)
    return f"tokens {how}"


def m_version(rng, model: Model) -> str:
    model.version = rng.choice([0, 1, 2, 4, 0x03000000, 2**32 - 1])
    return f"version {model.version}"


def _needs_tensors(op):
    def wrapped(rng, model: Model) -> str:
        return op(rng, model) if model.tensors else f"{op.__name__}: no tensors"
    return wrapped


m_name, m_dims, m_type, m_offsets, m_layers, m_duplicate = map(
    _needs_tensors, (m_name, m_dims, m_type, m_offsets, m_layers, m_duplicate))

MODEL_OPS = [m_value_type, m_value_type, m_value_type, m_other_value, m_name, m_string_value, m_kind,
             m_dims, m_dims, m_type, m_offsets, m_alignment, m_layers, m_layers, m_many, m_duplicate,
             m_split, m_arrays, m_version]

# ---- mutations of the encoded fields ---------------------------------------------------------------

_INTERESTING = {
    "Q": [0, 1, 2, 7, 8, 32, 63, 64, 200_000, 2**31, 2**32, 2**40, 2**63, 2**64 - 1],
    "I": [0, 1, 2, 5, 8, 9, 12, 13, 30, 99, 2**31, 2**32 - 1],
    "i": [-1, 0, 2**31 - 1], "q": [-1, -2**63, 2**63 - 1], "H": [0, 65535], "h": [-1], "B": [0, 255],
    "b": [-128], "?": [True], "f": [float("nan"), float("inf"), float("-inf"), -0.0, 3.4e38],
    "d": [float("nan"), float("inf"), 1e308, -1e308],
}


def _field_op(rng, data: bytearray, fields: list[Field]) -> str:
    f = rng.choice(fields)
    old = struct.unpack_from("<" + f.fmt, data, f.pos)[0]
    choices = list(_INTERESTING[f.fmt])
    if f.fmt in "QI":
        choices += [max(old - 1, 0), old + 1, old * 2]
    value = rng.choice(choices)
    try:
        struct.pack_into("<" + f.fmt, data, f.pos, value)
    except struct.error:
        struct.pack_into("<" + f.fmt, data, f.pos, old ^ 1 if f.fmt in "QIiqHhBb" else old)
    return f"{f.kind}@{f.pos}={value!r}"


@dataclass
class Mutant:
    seed: int
    ops: list[str] = field(default_factory=list)
    file: bytes = b""

    def __str__(self) -> str:
        return f"mutant {self.seed}: " + "; ".join(self.ops)


def mutants(seed: int = 0, count: int = 2000):
    """`count` mutants, the same ones for the same seed."""
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        model = seed_model()
        m = Mutant(seed=seed * 1_000_003 + i)
        for op in rng.sample(MODEL_OPS, rng.choice([0, 1, 1, 1, 2, 2, 3])):
            m.ops.append(op(rng, model))
        data, fields = encode(model)
        data = bytearray(data)
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            m.ops.append(_field_op(rng, data, fields))
        how = rng.choice(["none"] * 6 + ["truncate_header", "truncate_data", "append"])
        if how == "truncate_header":
            end = max((f.pos for f in fields), default=24) + 8
            del data[rng.randrange(min(end, len(data))):]
        elif how == "truncate_data":
            del data[rng.randrange(len(data)):]
        elif how == "append":
            data += bytes(rng.randrange(1, 100))
        if how != "none":
            m.ops.append(how)
        m.file = bytes(data)
        if not m.ops:
            m.ops.append("unchanged")
        yield m


# ---- running a mutant -----------------------------------------------------------------------------

def hardware():
    """A fixed machine, so planning never probes the real one (8 GiB GPU, 16 GiB RAM, AVX2)."""
    from quantdesk.core.hardware import GPU, Hardware
    g = 1 << 30
    return Hardware("fuzz cpu", 4, 8, ["AVX2"], 16 * g, 16 * g,
                    [GPU("fuzz gpu", "nvidia", 8 * g, 8 * g, "cuda")], True, "cuda")


@dataclass
class Outcome:
    kind: str            # "accepted" | "refused"
    message: str         # the GGUFError's text, when refused
    planned: str         # what the planner said: "plan", "PlannerError", "-" (not planned)
    seconds: float


def run_mutant(m: Mutant, path: Path, *, hw=None, every_type: bool = False) -> Outcome:
    """Validate the mutant as a local file and as a remote prefix; plan what is accepted.

    Returns accepted/refused; any exception other than GGUFError/HeaderError (validation) or
    PlannerError (planning) propagates."""
    from quantdesk.core.gguf import GGUFError, HeaderError, inspect_gguf, read_prefix
    from quantdesk.core.planner import PlannerError, options_for, plan_for_model, plan_header
    hw = hw or hardware()
    path.write_bytes(m.file)
    start = time.perf_counter()
    planned = []

    def plan(fn, *args, **kw):
        try:
            fn(*args, n_ctx=2048, hardware=hw, **kw)
            planned.append("plan")
        except PlannerError as exc:
            _one_line(m, str(exc))
            planned.append("PlannerError")

    data = m.file

    def fetch(begin, end):
        return data[begin:end], len(data)
    try:
        remote = read_prefix(fetch, first_bytes=4096).header
    except HeaderError as exc:
        _one_line(m, exc.reason)
        remote = None
    if remote is not None:
        plan(plan_header, remote.metadata, remote.tensors)
    try:
        info = inspect_gguf(path)
    except GGUFError as exc:
        message = str(exc)
        _one_line(m, message)
        return Outcome("refused", message, "/".join(planned) or "-", time.perf_counter() - start)
    plan(plan_for_model, info)
    if every_type:
        plan(options_for, info)
    return Outcome("accepted", "", "/".join(planned), time.perf_counter() - start)


def _one_line(m: Mutant, message: str) -> None:
    assert message.isprintable() and len(message) < 600, f"{m}: message is not one short line: {message!r}"


def reason(message: str) -> str:
    """A refusal's kind, for counting: the message without names and numbers."""
    text = message.split(" ", 1)[1] if message.startswith("m.gguf ") else message
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"[0-9][0-9,.]*", "N", text)
    return " ".join(text.split()[:9])


# ---- the child process both the test and the benchmark run ----------------------------------------

def child(seed: int, start: int, count: int, limit_mb: int, every_type: int) -> None:
    """Run mutants start..count-1, one JSON line each, announced before it runs. The address
    space may grow by at most `limit_mb` over what the imports took; each row says how far the
    peak resident size grew while that mutant ran (a mutant that needs more is a MemoryError
    here, not a machine that swaps)."""
    import resource
    import tempfile
    from quantdesk.core.gguf import inspect_gguf  # noqa: F401 - imports before the baseline
    from quantdesk.core.planner import plan_for_model  # noqa: F401
    hw = hardware()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.gguf"
        run_mutant(Mutant(-1, ["warm-up"], encode(seed_model())[0]), path, hw=hw, every_type=True)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux
        with open("/proc/self/statm") as f:
            vm_bytes = int(f.read().split()[0]) * resource.getpagesize()
        limit = vm_bytes + (limit_mb << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
        for i, m in enumerate(mutants(seed=seed, count=count)):
            if i < start:
                continue
            print(json.dumps({"start": i, "mutant": str(m)[:200]}), flush=True)
            cpu = time.process_time()
            try:
                outcome = run_mutant(m, path, hw=hw, every_type=every_type > 0 and i % every_type == 0)
                row = {"kind": outcome.kind, "reason": reason(outcome.message) if outcome.message else "",
                       "planned": outcome.planned, "seconds": outcome.seconds}
            except Exception as exc:  # noqa: BLE001 - counting bugs is the point
                row = {"kind": "other error", "error": type(exc).__name__,
                       "detail": (str(exc).splitlines() or [""])[0][:200], "planned": "-", "seconds": 0.0}
            row.update(done=i, cpu=time.process_time() - cpu,
                       rss_growth_mb=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    import argparse
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--limit-mb", type=int, default=256)
    ap.add_argument("--every-type", type=int, default=10, help="options_for on every Nth mutant")
    a = ap.parse_args()
    child(a.seed, a.child, a.count, a.limit_mb, a.every_type)
