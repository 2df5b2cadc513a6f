"""What a GGUF model is: `inspect_gguf(path) -> ModelInfo`, validated before llama.cpp sees it.

Each file is validated by `validate.check_file` (header through the one reader, then the tensor
data); this module assembles split models (NAME-00001-of-0000N.gguf) and reads the model-level
facts the app shows and the planner needs.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from quantdesk.core.text import quoted, shown

from .errors import GGUFError
from .header import array_length, metadata_count
from .limits import LIMITS
from .validate import CheckedFile, check_file

# llama.cpp names split parts "%s-%05d-of-%05d.gguf" (llama_split_path).
SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
_LAYER = re.compile(r"^blk\.([0-9]+)\.")


@dataclass(frozen=True)
class ModelInfo:
    path: Path                      # first file (split models: the -00001-of-0000N file)
    files: tuple[Path, ...]         # all parts (one for a normal model)
    name: str                       # general.name or file stem
    architecture: str               # "llama", "gemma3", ...
    parameters: int                 # sum of tensor element counts
    file_type: str                  # "Q4_1", "Q4_K_M", "F16", ...
    block_count: int
    context_length: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    vocab_size: int
    tensor_count: int
    size_bytes: int                 # sum of all parts on disk
    has_chat_template: bool
    chat_template: str | None
    # Additions beyond the contract (all defaulted), mostly for the planner:
    key_length: int = 0             # per-head K width (attention.key_length, else embd / heads)
    value_length: int = 0
    sliding_window: int = 0         # 0 = none
    tensor_bytes: int = 0           # weight data only (size_bytes minus headers and padding)
    layer_bytes: tuple[int, ...] = ()   # weight bytes of each blk.N
    other_bytes: int = 0            # token embeddings, output head, final norm
    tensor_types: tuple[tuple[str, int], ...] = ()  # ("Q4_K", n_tensors), most elements first
    size_label: str = ""            # general.size_label, e.g. "135M"
    gguf_version: int = 3

    @property
    def split_count(self) -> int:
        return len(self.files)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["files"] = [str(f) for f in self.files]
        d["layer_bytes"] = list(self.layer_bytes)
        d["tensor_types"] = {k: v for k, v in self.tensor_types}
        d["split_count"] = self.split_count
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelInfo:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["path"] = Path(d["path"])
        kw["files"] = tuple(Path(f) for f in d["files"])
        kw["layer_bytes"] = tuple(d.get("layer_bytes", ()))
        kw["tensor_types"] = tuple((k, v) for k, v in d.get("tensor_types", {}).items())
        return cls(**kw)


def split_parts(path: str | Path) -> list[Path] | None:
    """All part paths of the split model `path` belongs to, judged by its name; None if not split."""
    path = Path(path)
    m = SPLIT_NAME.match(path.name)
    if not m or int(m["count"]) < 2:
        return None
    count = int(m["count"])
    return [path.with_name(f"{m['prefix']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def inspect_gguf(path: str | Path) -> ModelInfo:
    """Validate `path` (and, for a split model, every part) and describe the model.

    Raises GGUFError (one line, naming the file) for anything llama.cpp could not load."""
    # Absolute but not resolved: a Hugging Face snapshot link keeps its readable file name.
    given = check_file(Path(os.path.abspath(path)))
    return _describe(_collect_parts(given))


def _collect_parts(given: CheckedFile) -> list[CheckedFile]:
    count = _int(given.metadata.get("split.count"), 1)
    if count <= 1:
        return [given]
    no = _int(given.metadata.get("split.no"), 0)
    names = split_parts(given.path)
    if names is None or len(names) != count:
        raise GGUFError(f"{shown(given.path.name)} is part {no + 1} of a {count}-part model, but its name does "
                        f"not end in -{no + 1:05d}-of-{count:05d}.gguf, so the other parts cannot be found")
    parts = []
    for i, p in enumerate(names):
        if p.name == given.path.name:
            part = given
        elif not p.exists():
            raise GGUFError(f"{shown(p.name)} is missing (part {i + 1} of {count} of this model)")
        else:
            part = check_file(p)
        got = (_int(part.metadata.get("split.no"), -1), _int(part.metadata.get("split.count"), -1))
        if got != (i, count):
            raise GGUFError(f"{shown(p.name)} is not part {i + 1} of {count} of this model "
                            f"(its metadata says part {got[0] + 1} of {got[1]})")
        parts.append(part)
    expected = _int(parts[0].metadata.get("split.tensors.count"), None)
    total = sum(len(p.tensors) for p in parts)
    if expected is not None and expected != total:
        raise GGUFError(f"{shown(parts[0].path.name)} is corrupt: the parts hold {total} tensors, "
                        f"the first part says {expected}")
    return parts


def _int(value: Any, default):
    """Metadata number; per-layer arrays (head counts on some models) give their maximum; NaN,
    infinities, negatives and other types give `default` (header.metadata_count)."""
    return metadata_count(value, default)


def _describe(parts: list[CheckedFile]) -> ModelInfo:
    first = parts[0]
    kv = first.metadata
    name = shown(first.path.name)
    tensors = [t for p in parts for t in p.tensors]
    arch = kv.get("general.architecture")
    kind = kv.get("general.type")
    if kind == "adapter":
        raise GGUFError(f"{name} is a LoRA adapter, not a model")
    if kind == "imatrix":
        raise GGUFError(f"{name} is an importance matrix (imatrix), not a model")
    if not isinstance(arch, str) or not arch.strip():
        raise GGUFError(f"{name} is not a model (it has no general.architecture)")
    if arch == "clip":
        raise GGUFError(f"{name} is a vision projector (mmproj), not a language model")
    if not tensors:
        raise GGUFError(f"{name} holds no weights (a vocabulary-only file?)")

    def a(key: str, default: int = 0) -> int:
        return _int(kv.get(f"{arch}.{key}"), default)

    embd, heads = a("embedding_length"), a("attention.head_count")
    head_dim = embd // heads if heads else 0
    template = kv.get("tokenizer.chat_template")
    template = template if isinstance(template, str) and template.strip() else None
    vocab = a("vocab_size") or array_length(kv.get("tokenizer.ggml.tokens"))
    stem = SPLIT_NAME.sub(r"\g<prefix>", first.path.name) if len(parts) > 1 else first.path.stem
    gname = kv.get("general.name")
    layers: dict[int, int] = {}
    other = 0
    most = LIMITS.max_layers
    for t in tensors:
        m = _LAYER.match(t.name)
        if m:
            index = int(m[1])
            if index >= most:   # blk.1000000000.w: refused before a per-layer table is built
                raise GGUFError(f"{name} is not a model llama.cpp can load: tensor {quoted(t.name)} "
                                f"is in layer {index:,}, and llama.cpp loads at most {most} layers")
            layers[index] = layers.get(index, 0) + t.n_bytes
        else:
            other += t.n_bytes
    n_layers = max(layers) + 1 if layers else 0
    blocks = a("block_count", n_layers)
    if blocks > most:
        raise GGUFError(f"{name} is not a model llama.cpp can load: it claims {blocks:,} layers, "
                        f"and llama.cpp loads at most {most}")
    return ModelInfo(
        path=first.path,
        files=tuple(p.path for p in parts),
        name=gname.strip() if isinstance(gname, str) and gname.strip() else stem,
        architecture=arch,
        parameters=sum(t.n_elements for t in tensors),
        file_type=file_type_name(kv, tensors),
        block_count=blocks,
        context_length=a("context_length"),
        embedding_length=embd,
        head_count=heads,
        head_count_kv=a("attention.head_count_kv", heads),
        vocab_size=vocab,
        tensor_count=len(tensors),
        size_bytes=sum(p.file_size for p in parts),
        has_chat_template=template is not None,
        chat_template=template,
        key_length=a("attention.key_length", head_dim),
        value_length=a("attention.value_length", head_dim),
        sliding_window=a("attention.sliding_window"),
        tensor_bytes=sum(t.n_bytes for t in tensors),
        layer_bytes=tuple(layers.get(i, 0) for i in range(n_layers)),
        other_bytes=other,
        tensor_types=_type_counts(tensors),
        size_label=str(kv.get("general.size_label") or ""),
        gguf_version=first.version,
    )


def file_type_name(metadata: dict, tensors) -> str:
    """llama_ftype name ("Q4_K_M") from general.file_type, else the type of most weights
    (by elements, among tensors of two or more dimensions); "unknown" without tensors."""
    from gguf import LlamaFileType
    value = metadata.get("general.file_type")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            ftype = LlamaFileType(value)
        except ValueError:
            ftype = None
        if ftype is not None and ftype is not LlamaFileType.GUESSED:
            return ftype.name.removeprefix("MOSTLY_").removeprefix("ALL_")
    weights = [t for t in tensors if t.n_dims >= 2] or list(tensors)
    by_elements = Counter()
    for t in weights:
        by_elements[t.type_name] += t.n_elements
    return by_elements.most_common(1)[0][0] if by_elements else "unknown"


def _type_counts(tensors) -> tuple[tuple[str, int], ...]:
    elements, counts = Counter(), Counter()
    for t in tensors:
        elements[t.type_name] += t.n_elements
        counts[t.type_name] += 1
    return tuple((name, counts[name]) for name, _ in elements.most_common())
