"""Names for the Quantize page: a default output path that never points at an existing file."""
from __future__ import annotations

import re
from pathlib import Path

# A trailing type tag in a file name ("-F32", ".Q4_1", "_bf16"): dropped before adding the new one.
_TYPE_TAG = re.compile(r"[-._](F32|F16|BF16|Q\d(_K)?(_[SML0-9])?|IQ\w+)$", re.IGNORECASE)


def base_name(source) -> str:
    """The model's name from its file or folder, without a type tag: "SmolLM2-135M-Instruct"."""
    p = Path(source)
    if p.name == "config.json" or p.suffix.lower() == ".safetensors":
        p = p.parent
    stem = p.name[:-5] if p.name.lower().endswith(".gguf") else p.name
    stem = re.sub(r"-\d{5}-of-\d{5}$", "", stem)
    return _TYPE_TAG.sub("", stem) or stem


def free_path(folder: Path, stem: str, suffix: str) -> Path:
    """folder/<stem><suffix>, or <stem>-2<suffix>, -3 ... when that file exists already."""
    out, n = Path(folder) / f"{stem}{suffix}", 2
    while out.exists():
        out, n = Path(folder) / f"{stem}-{n}{suffix}", n + 1
    return out


def default_output(folder: Path, source, qtype: str) -> Path:
    """folder/<name>-<TYPE>.gguf, numbered when that file exists already."""
    return free_path(folder, f"{base_name(source)}-{qtype}", ".gguf")
