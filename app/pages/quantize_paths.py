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


def default_output(folder: Path, source, qtype: str) -> Path:
    """folder/<name>-<TYPE>.gguf, or -2, -3 ... when that file exists already."""
    name = f"{base_name(source)}-{qtype}"
    out = Path(folder) / f"{name}.gguf"
    n = 2
    while out.exists():
        out = Path(folder) / f"{name}-{n}.gguf"
        n += 1
    return out
